"""`/api/accountant`: subscriptions (JSON and CSV) and revenue, for accountants and providers.

MRR (monthly recurring revenue) counts subscriptions whose status is `active` or `past_due`
(still billed; `trialing` pays nothing yet, `canceled`/`unpaid`/`incomplete*` do not recur),
each at its price normalised to a month: `year` / 12, `week` * 52 / 12, `day` * 365 / 12,
rounded to whole cents per subscription. It is reported per currency, never converted.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Final

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth import Role, require_roles
from cortiware.db.models import Organization, Subscription

__all__ = [
    "MRR_STATUSES",
    "AccountantController",
    "Revenue",
    "SubscriptionRow",
    "monthly_cents",
    "organization_names",
    "revenue",
    "subscription_rows",
]

MRR_STATUSES: Final = frozenset({"active", "past_due"})
_PER_MONTH: Final = {"month": 1.0, "year": 1 / 12, "week": 52 / 12, "day": 365 / 12}
CSV_COLUMNS: Final = (
    "id",
    "organization_id",
    "stripe_subscription_id",
    "status",
    "current_period_end",
    "cancel_at_period_end",
    "updated_at",
)


class SubscriptionRow(msgspec.Struct):
    """A subscription as accountants see it (contract §3)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    stripe_subscription_id: str | None
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    updated_at: datetime


class Revenue(msgspec.Struct):
    """MRR per currency (cents) and subscription counts per status."""

    mrr_cents: dict[str, int]
    counts_by_status: dict[str, int]
    total: int
    mrr_statuses: list[str]
    generated_at: datetime


def monthly_cents(amount_cents: int | None, interval: str | None) -> int:
    """`amount_cents` per `interval` normalised to a month (0 when unknown)."""
    if amount_cents is None:
        return 0
    return round(amount_cents * _PER_MONTH.get(interval or "month", 0.0))


def _filtered(status: str | None, organization_id: uuid.UUID | None) -> Select[tuple[Subscription]]:
    query = select(Subscription).order_by(Subscription.updated_at.desc(), Subscription.id)
    if status:
        query = query.where(Subscription.status == status)
    if organization_id:
        query = query.where(Subscription.organization_id == organization_id)
    return query


def _row(sub: Subscription) -> SubscriptionRow:
    return SubscriptionRow(
        id=sub.id,
        organization_id=sub.organization_id,
        stripe_subscription_id=sub.stripe_subscription_id,
        status=sub.status,
        current_period_end=sub.current_period_end,
        cancel_at_period_end=sub.cancel_at_period_end,
        updated_at=sub.updated_at,
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # Spreadsheet formula injection: a cell starting with one of these is made inert.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AccountantController(Controller):
    """Subscriptions and revenue (accountant and provider)."""

    path = "/api/accountant"
    tags = ["accountant"]
    guards = [require_roles(Role.ACCOUNTANT, Role.PROVIDER)]

    @get("/subscriptions", summary="Subscriptions, optionally by status or organization")
    async def subscriptions(
        self,
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[str | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[SubscriptionRow]:
        """Most recently updated first."""
        return await subscription_rows(db_session, status, organization_id)

    @get("/subscriptions.csv", summary="The same list as CSV", media_type="text/csv")
    async def subscriptions_csv(
        self,
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[str | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
    ) -> Response[str]:
        """`text/csv` with a header row; same filters and order as the JSON list."""
        rows = await db_session.scalars(_filtered(status, organization_id))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for sub in rows:
            writer.writerow([_cell(getattr(_row(sub), c)) for c in CSV_COLUMNS])
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return Response(
            buffer.getvalue(),
            media_type="text/csv",  # Litestar appends `; charset=utf-8` to every text/ type
            headers={
                "Content-Disposition": f'attachment; filename="subscriptions-{stamp}.csv"',
                "Cache-Control": "no-store",
            },
        )

    @get("/revenue", summary="MRR and subscription counts by status")
    async def revenue(self, db_session: NamedDependency[AsyncSession]) -> Revenue:
        """MRR per currency over `active` and `past_due` subscriptions; counts of every status."""
        return await revenue(db_session)


async def subscription_rows(
    db_session: AsyncSession, status: str | None = None, organization_id: uuid.UUID | None = None
) -> list[SubscriptionRow]:
    """Subscriptions, most recently updated first, optionally by status or organization."""
    rows = await db_session.scalars(_filtered(status, organization_id))
    return [_row(s) for s in rows]


async def organization_names(db_session: AsyncSession) -> dict[uuid.UUID, str]:
    """Every organization's name by id (for showing subscriptions to people)."""
    rows = await db_session.execute(select(Organization.id, Organization.name))
    return {row[0]: row[1] for row in rows.all()}


async def revenue(db_session: AsyncSession) -> Revenue:
    """MRR per currency over `active` and `past_due` subscriptions; counts of every status."""
    rows = (
        await db_session.execute(
            select(
                Subscription.status,
                Subscription.amount_cents,
                Subscription.currency,
                Subscription.interval,
            )
        )
    ).all()
    counts: Counter[str] = Counter()
    mrr: Counter[str] = Counter()
    for status, amount, currency, interval in rows:
        counts[status] += 1
        if status in MRR_STATUSES and amount is not None:
            mrr[(currency or "usd").lower()] += monthly_cents(amount, interval)
    return Revenue(
        mrr_cents=dict(sorted(mrr.items())),
        counts_by_status=dict(sorted(counts.items())),
        total=sum(counts.values()),
        mrr_statuses=sorted(MRR_STATUSES),
        generated_at=datetime.now(UTC),
    )
