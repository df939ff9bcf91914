"""`AccountantReports` and `DeveloperDiagnostics` called directly on PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.models import Subscription
from cortiware.db.session import transaction
from cortiware.portals.service import AccountantReports, DeveloperDiagnostics
from cortiware.settings import Settings
from tests.support.stripe_fake import create_organization

Sessions = async_sessionmaker[AsyncSession]


async def test_reports_cover_one_organizations_subscriptions(sessions: Sessions) -> None:
    """The filtered list, its CSV (formula cells made inert) and the revenue all count a new
    organization's yearly subscription, at a twelfth of its price in MRR."""
    org_id = await create_organization(sessions)
    stripe_id = f"=cmd|{uuid.uuid4().hex[:8]}"
    async with transaction(sessions) as session:
        session.add(
            Subscription(
                organization_id=org_id,
                status="active",
                stripe_subscription_id=stripe_id,
                amount_cents=12_000,
                currency="eur",
                interval="year",
            )
        )
    async with sessions() as session:
        reports = AccountantReports(session=session)
        before = await reports.revenue()
        rows = await reports.subscriptions(organization_id=org_id)
        table = list(csv.reader(io.StringIO(await reports.subscriptions_csv("active", org_id))))
    assert [r.stripe_subscription_id for r in rows] == [stripe_id]
    assert table[1][2] == "'" + stripe_id
    assert before.counts_by_status["active"] >= 1
    assert before.mrr_cents["eur"] >= 1_000


async def test_diagnostics_report_migrations_redis_and_backlog(
    sessions: Sessions, pg_settings: Settings
) -> None:
    """The snapshot has the migrated head, the Redis status given, and the webhook backlog."""

    async def redis() -> str:
        return "degraded"

    async with sessions() as session:
        snapshot = await DeveloperDiagnostics(
            session=session, settings=pg_settings, redis_status=redis
        ).snapshot()
    assert snapshot.migrations.up_to_date
    assert snapshot.dependencies == {"database": "ok", "redis": "degraded"}
    assert set(snapshot.webhooks) == {"unmatched", "failed", "received"}
    assert snapshot.features["redis"] is True
