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

__all__ = ["DeveloperController", "Diagnostics", "Migrations"]


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
