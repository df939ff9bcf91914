"""The portals' reports: subscriptions and revenue for accountants, diagnostics for developers.

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db import migrate
from cortiware.db.models import Organization, Subscription, WebhookEvent
from cortiware.portals.schemas import Delivery, Diagnostics, Migrations, Revenue, SubscriptionRow
from cortiware.settings import Settings

__all__ = [
    "CSV_COLUMNS",
    "MRR_STATUSES",
    "AccountantReports",
    "DeveloperDiagnostics",
    "monthly_cents",
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
    text_value = str(value)
    # Spreadsheet formula injection: a cell starting with one of these is made inert.
    return "'" + text_value if text_value[:1] in ("=", "+", "-", "@", "\t", "\r") else text_value


class AccountantReports:
    """Subscriptions and revenue, read in the caller's session."""

    __slots__ = ("session",)

    def __init__(self, *, session: AsyncSession) -> None:
        self.session = session

    async def subscriptions(
        self, status: str | None = None, organization_id: uuid.UUID | None = None
    ) -> list[SubscriptionRow]:
        """Subscriptions, most recently updated first, optionally filtered."""
        rows = await self.session.scalars(_filtered(status, organization_id))
        return [_row(s) for s in rows]

    async def subscriptions_csv(
        self, status: str | None = None, organization_id: uuid.UUID | None = None
    ) -> str:
        """The same list as CSV with a header row (formula-like cells made inert)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in await self.subscriptions(status, organization_id):
            writer.writerow([_cell(getattr(row, c)) for c in CSV_COLUMNS])
        return buffer.getvalue()

    async def organization_names(self) -> dict[uuid.UUID, str]:
        """Every organization's name by id (for showing subscriptions to people)."""
        rows = await self.session.execute(select(Organization.id, Organization.name))
        return {row[0]: row[1] for row in rows.all()}

    async def revenue(self) -> Revenue:
        """MRR per currency over `MRR_STATUSES`; counts of every status."""
        rows = (
            await self.session.execute(
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


def _features(settings: Settings) -> dict[str, bool]:
    # Booleans only: whether each optional feature is configured, never its value.
    return {
        "redis": settings.redis_url is not None,
        "stripe_live_mode": settings.stripe_secret_key.startswith(("sk_live_", "rk_live_")),
        "stripe_webhook_secret_rotation": len(settings.stripe_webhook_secrets) > 1,
        "federation_webhooks": bool(settings.federation_webhook_secrets),
        "oidc": settings.oidc_enabled,
        "sentry": bool(settings.sentry_dsn),
        "trusted_proxies": bool(settings.trusted_proxies),
        "rate_limiting": settings.rate_limit_enabled,
        "secure_cookies": settings.secure_cookies,
    }


class DeveloperDiagnostics:
    """What a developer needs to know about this instance, never a secret's value."""

    __slots__ = ("redis_status", "session", "settings")

    def __init__(
        self,
        *,
        session: AsyncSession,
        settings: Settings,
        redis_status: Callable[[], Awaitable[str]],
    ) -> None:
        self.session = session
        self.settings = settings
        self.redis_status = redis_status
        """The Redis check as `/api/health` reports it."""

    async def snapshot(self) -> Diagnostics:
        """Version, migrations, dependencies, configured features and webhook backlog."""
        settings = self.settings
        current: Any = await self.session.scalar(text("SELECT version_num FROM alembic_version"))
        head = migrate.head_revision()
        counted = await self.session.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        )
        by_status: dict[str, int] = {row[0]: int(row[1]) for row in counted.all()}
        return Diagnostics(
            version=settings.app_version,
            app_env=settings.app_env.value,
            migrations=Migrations(head=head, current=current, up_to_date=head == current),
            dependencies={"database": "ok", "redis": await self.redis_status()},
            features=_features(settings),
            webhooks={
                "unmatched": int(by_status.get("unmatched", 0)),
                "failed": int(by_status.get("failed", 0)),
                "received": int(by_status.get("received", 0)),
            },
            generated_at=datetime.now(UTC),
        )

    async def recent_deliveries(self, limit: int = 20) -> list[Delivery]:
        """The newest webhook deliveries (Stripe and federation), newest first."""
        rows = await self.session.scalars(
            select(WebhookEvent).order_by(WebhookEvent.received_at.desc()).limit(limit)
        )
        return [
            Delivery(
                source=row.source,
                event_id=row.event_id,
                type=row.type,
                status=row.status,
                attempts=row.attempts,
                error=row.error,
                received_at=row.received_at,
                processed_at=row.processed_at,
            )
            for row in rows
        ]
