"""Bodies of the accountant and developer APIs."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

__all__ = ["Delivery", "Diagnostics", "Migrations", "Revenue", "SubscriptionRow"]


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
