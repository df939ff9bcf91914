"""Onboarding: create an invite, verify its token, accept it into an organization.

Accepting is safe under concurrency: the invite is claimed by a conditional
`UPDATE … SET used_at = now WHERE id = :id AND used_at IS NULL AND expires_at > now` in the
same transaction that creates the organization. On PostgreSQL a second, concurrent accept
waits on the row lock, re-reads the row once the first commits, matches nothing and fails
with 409, so one invite yields exactly one organization.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit import Actor, record, snapshot
from cortiware.auth import credentials
from cortiware.db.models import (
    MonetizationConfig,
    OnboardingInvite,
    Organization,
    Owner,
    Plan,
    Price,
    Subscription,
)
from cortiware.errors import Conflict, Unprocessable
from cortiware.onboarding.errors import (
    InviteExpired,
    InviteTokenInvalid,
    InviteUnknown,
    InviteUsed,
    OwnerExists,
)
from cortiware.onboarding.tokens import (
    SecretKeys,
    TokenInvalid,
    check_token,
    issue_token,
    token_hash,
)

__all__ = [
    "DEFAULT_EXPIRES_IN_HOURS",
    "Accepted",
    "IssuedInvite",
    "accept_invite",
    "create_invite",
    "find_invite",
    "hash_password",
]

DEFAULT_EXPIRES_IN_HOURS: Final = 72
_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    """Trimmed, lower-cased email; raise Unprocessable when it is not an address."""
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise Unprocessable("email is not an email address.")
    return value


async def hash_password(password: str) -> str:
    """The argon2id hash of `password` (the login's own hasher), computed off the event loop."""
    return await anyio.to_thread.run_sync(credentials.hash_password, password)


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite and its token (returned once, never stored)."""

    invite: OnboardingInvite
    token: str


async def create_invite(
    session: AsyncSession,
    *,
    secret: str,
    email: str,
    org_name: str,
    plan_code: str | None,
    expires_in_hours: int,
    created_by: str,
) -> IssuedInvite:
    """Add an invite; 422 for an unknown plan, 409 when an owner has the email already."""
    address = normalise_email(email)
    if plan_code is not None:
        plan = await session.scalar(select(Plan.id).where(Plan.code == plan_code, Plan.active))
        if plan is None:
            raise Unprocessable("plan_code names no active plan.")
    if await session.scalar(select(Owner.id).where(Owner.email == address)) is not None:
        raise Conflict("An owner with this email exists already.")
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=expires_in_hours)
    token = issue_token(secret, expires_at)
    invite = OnboardingInvite(
        email=address,
        org_name=org_name.strip(),
        plan_code=plan_code,
        token_hash=token_hash(token),
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(invite)
    await session.flush()
    return IssuedInvite(invite=invite, token=token)


async def find_invite(
    session: AsyncSession, *, secret: SecretKeys, token: str, now: datetime | None = None
) -> OnboardingInvite:
    """The usable invite for `token`; raise 400 invalid, 404 unknown, 409 used, 410 expired."""
    try:
        check_token(secret, token)
    except TokenInvalid as exc:
        raise InviteTokenInvalid("The invite link is malformed or was altered.") from exc
    invite = await session.scalar(
        select(OnboardingInvite).where(OnboardingInvite.token_hash == token_hash(token))
    )
    if invite is None:
        raise InviteUnknown("No invite has this token.")
    if invite.used_at is not None:
        raise InviteUsed("This invite has been accepted already.")
    if invite.expires_at <= (now or datetime.now(UTC)):
        raise InviteExpired("This invite has expired; ask for a new one.")
    return invite


@dataclass(frozen=True, slots=True)
class Accepted:
    """What accepting an invite created."""

    invite: OnboardingInvite
    organization: Organization
    owner: Owner
    subscription: Subscription | None


async def _trial(
    session: AsyncSession, organization_id: uuid.UUID, plan_code: str | None, now: datetime
) -> Subscription | None:
    config = await session.get(MonetizationConfig, 1)
    trial_days = config.trial_days if config is not None else 14
    code = plan_code or (config.default_plan_code if config is not None else None)
    if trial_days <= 0:
        return None  # no trial configured: the owner subscribes through Checkout
    price = None
    if code is not None:
        currency = config.currency if config is not None else "usd"
        price = await session.scalar(
            select(Price)
            .join(Plan, Plan.id == Price.plan_id)
            .where(Plan.code == code, Price.active)
            .order_by((Price.currency != currency), (Price.interval != "month"), Price.created_at)
            .limit(1)
        )
    return Subscription(
        organization_id=organization_id,
        plan_code=code,
        status="trialing",
        trial_end=now + timedelta(days=trial_days),
        current_period_start=now,
        current_period_end=now + timedelta(days=trial_days),
        amount_cents=price.amount_cents if price else None,
        currency=price.currency if price else None,
        interval=price.interval if price else None,
        stripe_price_id=price.stripe_price_id if price else None,
    )


async def accept_invite(
    session: AsyncSession,
    *,
    secret: SecretKeys,
    token: str,
    name: str,
    password: str,
    request: Any = None,
) -> Accepted:
    """Create the organization, its owner and the trial subscription; raise InviteError.

    Everything, audit rows included, is added to `session`; the caller's transaction
    commits it all or nothing.
    """
    invite = await find_invite(session, secret=secret, token=token)
    password_hash = await hash_password(password)  # slow by design: before taking the lock
    now = datetime.now(UTC)
    claimed = await session.execute(
        update(OnboardingInvite)
        .where(
            OnboardingInvite.id == invite.id,
            OnboardingInvite.used_at.is_(None),
            OnboardingInvite.expires_at > now,
        )
        .values(used_at=now)
        .returning(OnboardingInvite.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.scalar_one_or_none() is None:
        # Another accept won the race (or the invite expired meanwhile).
        await session.refresh(invite)
        if invite.used_at is None:
            raise InviteExpired("This invite has expired; ask for a new one.")
        raise InviteUsed("This invite has been accepted already.")
    await session.refresh(invite)
    actor = Actor(name=invite.email, role="invitee")
    organization = Organization(name=invite.org_name, status="active")
    session.add(organization)
    await session.flush()
    owner = Owner(
        organization_id=organization.id,
        email=invite.email,
        name=name.strip(),
        password_hash=password_hash,
    )
    session.add(owner)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise OwnerExists("An owner with this email exists already.") from exc
    subscription = await _trial(session, organization.id, invite.plan_code, now)
    if subscription is not None:
        session.add(subscription)
    invite.organization_id = organization.id
    await session.flush()
    org_id = organization.id
    await record(
        session,
        actor=actor,
        entity="onboarding_invite",
        entity_id=invite.id,
        action="accept",
        before={"used_at": None, "organization_id": None},
        after={"used_at": invite.used_at, "organization_id": org_id},
        organization_id=org_id,
        request=request,
    )
    for entity, row in (("organization", organization), ("owner", owner)):
        await record(
            session,
            actor=actor,
            entity=entity,
            entity_id=row.id,
            action="create",
            after=snapshot(row),
            organization_id=org_id,
            request=request,
        )
    if subscription is not None:
        await record(
            session,
            actor=actor,
            entity="subscription",
            entity_id=subscription.id,
            action="create",
            after=snapshot(subscription),
            organization_id=org_id,
            request=request,
        )
    return Accepted(invite, organization, owner, subscription)
