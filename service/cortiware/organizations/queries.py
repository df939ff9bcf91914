"""Reading organizations with their owner and current subscription."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db.models import Organization, Owner, Subscription

__all__ = [
    "OrganizationDetail",
    "OrganizationSummary",
    "OwnerOut",
    "SubscriptionOut",
    "load_organization",
    "load_organizations",
    "subscription_of",
]


class SubscriptionOut(msgspec.Struct):
    """An organization's current subscription."""

    id: uuid.UUID
    organization_id: uuid.UUID
    status: str
    plan_code: str | None
    stripe_subscription_id: str | None
    trial_end: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    amount_cents: int | None
    currency: str | None
    interval: str | None
    updated_at: datetime

    @classmethod
    def of(cls, sub: Subscription) -> SubscriptionOut:
        """Build from a row."""
        return cls(
            id=sub.id,
            organization_id=sub.organization_id,
            status=sub.status,
            plan_code=sub.plan_code,
            stripe_subscription_id=sub.stripe_subscription_id,
            trial_end=sub.trial_end,
            current_period_end=sub.current_period_end,
            cancel_at_period_end=sub.cancel_at_period_end,
            amount_cents=sub.amount_cents,
            currency=sub.currency,
            interval=sub.interval,
            updated_at=sub.updated_at,
        )


class OwnerOut(msgspec.Struct):
    """An organization's owner (never the password hash)."""

    id: uuid.UUID
    email: str
    name: str
    created_at: datetime
    last_login_at: datetime | None


class OrganizationSummary(msgspec.Struct):
    """A row of the provider's organization list."""

    id: uuid.UUID
    name: str
    status: str
    created_at: datetime
    owner_email: str | None
    subscription_status: str | None
    plan_code: str | None
    trial_end: datetime | None
    current_period_end: datetime | None


class OrganizationDetail(msgspec.Struct):
    """One organization with its owners and current subscription."""

    id: uuid.UUID
    name: str
    status: str
    created_at: datetime
    owners: list[OwnerOut]
    subscription: SubscriptionOut | None


def _current(subs: list[Subscription]) -> Subscription | None:
    # The newest subscription is the current one (a canceled one is replaced by a new row).
    return max(subs, key=lambda s: (s.created_at, s.updated_at), default=None)


async def subscription_of(session: AsyncSession, organization_id: uuid.UUID) -> Subscription | None:
    """The organization's current subscription, if any."""
    found: Subscription | None = await session.scalar(
        select(Subscription)
        .where(Subscription.organization_id == organization_id)
        .order_by(Subscription.created_at.desc(), Subscription.updated_at.desc())
        .limit(1)
    )
    return found


async def load_organizations(session: AsyncSession) -> list[OrganizationSummary]:
    """Every organization, newest first, with owner email and subscription status."""
    orgs = list(
        (await session.scalars(select(Organization).order_by(Organization.created_at.desc()))).all()
    )
    owners: dict[uuid.UUID, str] = {}
    for owner in (await session.scalars(select(Owner).order_by(Owner.created_at.desc()))).all():
        owners[owner.organization_id] = owner.email  # oldest owner wins: iterated last
    subs: dict[uuid.UUID, list[Subscription]] = {}
    for sub in (await session.scalars(select(Subscription))).all():
        subs.setdefault(sub.organization_id, []).append(sub)
    result = []
    for org in orgs:
        current = _current(subs.get(org.id, []))
        result.append(
            OrganizationSummary(
                id=org.id,
                name=org.name,
                status=org.status,
                created_at=org.created_at,
                owner_email=owners.get(org.id),
                subscription_status=current.status if current else None,
                plan_code=current.plan_code if current else None,
                trial_end=current.trial_end if current else None,
                current_period_end=current.current_period_end if current else None,
            )
        )
    return result


async def load_organization(
    session: AsyncSession, organization_id: uuid.UUID
) -> OrganizationDetail | None:
    """One organization, or None."""
    org = await session.get(Organization, organization_id)
    if org is None:
        return None
    owners = (
        await session.scalars(
            select(Owner).where(Owner.organization_id == org.id).order_by(Owner.created_at)
        )
    ).all()
    current = await subscription_of(session, org.id)
    return OrganizationDetail(
        id=org.id,
        name=org.name,
        status=org.status,
        created_at=org.created_at,
        owners=[
            OwnerOut(
                id=o.id,
                email=o.email,
                name=o.name,
                created_at=o.created_at,
                last_login_at=o.last_login_at,
            )
            for o in owners
        ],
        subscription=SubscriptionOut.of(current) if current else None,
    )
