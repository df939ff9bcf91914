"""`/api/developer/diagnostics`: what a developer needs to know, never a secret's value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth import Role, require_roles
from cortiware.db import migrate
from cortiware.db.models import WebhookEvent
from cortiware.health import redis_status
from cortiware.settings import Settings

__all__ = [
    "Delivery",
    "DeveloperController",
    "Diagnostics",
    "Migrations",
    "diagnostics",
    "recent_deliveries",
]


class Migrations(msgspec.Struct):
    """Alembic revisions: shipped with the code and applied to the database."""

    head: str | None
    current: str | None
    up_to_date: bool


class Diagnostics(msgspec.Struct):
    """Version, migrations, dependencies, configured features and webhook backlog."""

    version: str
    app_env: str
    migrations: Migrations
    dependencies: dict[str, str]
    features: dict[str, bool]
    webhooks: dict[str, int]
    generated_at: datetime


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


class DeveloperController(Controller):
    """Diagnostics for developers (and providers)."""

    path = "/api/developer"
    tags = ["developer"]
    guards = [require_roles(Role.DEVELOPER, Role.PROVIDER)]

    @get("/diagnostics", summary="Version, migrations, dependencies, features, webhooks")
    async def diagnostics(
        self, db_session: NamedDependency[AsyncSession], state: State
    ) -> Diagnostics:
        """A snapshot; the database answered if this returns at all."""
        return await diagnostics(db_session, state)


async def diagnostics(db_session: AsyncSession, state: State) -> Diagnostics:
    """Version, migrations, dependencies, configured features and the webhook backlog."""
    settings: Settings = state.settings
    current: Any = await db_session.scalar(text("SELECT version_num FROM alembic_version"))
    head = migrate.head_revision()
    counted = await db_session.execute(
        select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    )
    by_status: dict[str, int] = {row[0]: int(row[1]) for row in counted.all()}
    return Diagnostics(
        version=settings.app_version,
        app_env=settings.app_env.value,
        migrations=Migrations(head=head, current=current, up_to_date=head == current),
        dependencies={"database": "ok", "redis": await redis_status(state)},
        features=_features(settings),
        webhooks={
            "unmatched": int(by_status.get("unmatched", 0)),
            "failed": int(by_status.get("failed", 0)),
            "received": int(by_status.get("received", 0)),
        },
        generated_at=datetime.now(UTC),
    )


class Delivery(msgspec.Struct):
    """One webhook delivery as received (never its payload)."""

    source: str
    event_id: str
    type: str
    status: str
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None


async def recent_deliveries(db_session: AsyncSession, limit: int = 20) -> list[Delivery]:
    """The newest webhook deliveries (Stripe and federation), newest first."""
    rows = await db_session.scalars(
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
