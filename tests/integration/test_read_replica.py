"""Reports, exports and audit listings read from DATABASE_REPLICA_URL, else the primary.

The "replica" here is a second migrated database on the same server holding rows the
primary does not: what a listing shows proves where it was read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from cortiware import metrics
from cortiware.app import create_app
from cortiware.db import migrate
from cortiware.db.engine import create_engine
from cortiware.db.models import AuditEntry, Organization, Subscription
from cortiware.db.replica import REPLICA_FALLBACK
from tests.conftest import SettingsFactory
from tests.integration.backends import Backends, scratch_database
from tests.support.auth import login_staff

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/cortiware"
"""Port 9 (discard): nothing listens, the connect is refused at once."""


@pytest.fixture(scope="module")
def replica_url(backends: Backends) -> Iterator[str]:
    """A second migrated database standing in for the read replica."""
    with scratch_database(backends.admin_database_url) as url:
        asyncio.run(migrate.upgrade(url))
        yield url


async def _subscription_in(url: str) -> tuple[uuid.UUID, str]:
    """An organization with one active subscription and one audit row, written to `url`;
    returns the organization id and the audit row's entity id."""
    engine = create_engine(url, pool_size=1)
    marker = uuid.uuid4().hex
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            org = Organization(name=f"Replica {marker[:6]}")
            session.add(org)
            await session.flush()
            session.add(
                Subscription(
                    organization_id=org.id,
                    stripe_subscription_id=f"sub_{marker[:12]}",
                    status="active",
                    amount_cents=1000,
                    currency="usd",
                    interval="month",
                    current_period_end=datetime.now(UTC) + timedelta(days=30),
                )
            )
            session.add(
                AuditEntry(
                    actor="replica-test",
                    role="provider",
                    organization_id=org.id,
                    entity="organization",
                    entity_id=marker,
                    action="update",
                    changes={},
                )
            )
            return org.id, marker
    finally:
        await engine.dispose()


@pytest.fixture
async def staff_client(
    request: pytest.FixtureRequest,
    make_settings: SettingsFactory,
    database_url: str,
    redis_url: str,
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A provider's client of an app whose DATABASE_REPLICA_URL is the test's parameter
    (`replica`: the stand-in replica database)."""
    replica = request.param
    if replica == "replica":
        replica = request.getfixturevalue("replica_url")
    settings = make_settings(
        DATABASE_URL=database_url, REDIS_URL=redis_url, DATABASE_REPLICA_URL=replica
    )
    async with AsyncTestClient(
        app=create_app(settings), base_url="http://testserver.local"
    ) as client:
        client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
        yield client


@pytest.mark.parametrize("staff_client", ["replica"], indirect=True)
async def test_reports_exports_and_audit_read_from_the_replica(
    staff_client: AsyncTestClient[Litestar], replica_url: str, database_url: str
) -> None:
    """Subscriptions, their CSV, revenue and the audit listing show the replica's rows, not
    the primary's; writes still go to the primary."""
    on_replica, replica_marker = await _subscription_in(replica_url)
    on_primary, primary_marker = await _subscription_in(database_url)
    listed = {
        r["organization_id"]
        for r in (await staff_client.get("/api/accountant/subscriptions")).json()
    }
    assert str(on_replica) in listed
    assert str(on_primary) not in listed
    csv = (await staff_client.get("/api/accountant/subscriptions.csv")).text
    assert str(on_replica) in csv
    assert str(on_primary) not in csv
    audit = (await staff_client.get("/api/provider/audit", params={"limit": 200})).json()
    entity_ids = {item["entity_id"] for item in audit["items"]}
    assert replica_marker in entity_ids
    assert primary_marker not in entity_ids
    # A mutation is written to the primary (its audit row is not on the replica).
    retention = await staff_client.put("/api/provider/audit/retention", json={"days": 91})
    assert retention.status_code == 200


@pytest.mark.parametrize("staff_client", [UNREACHABLE], indirect=True)
async def test_an_unreachable_replica_falls_back_to_the_primary(
    staff_client: AsyncTestClient[Litestar], database_url: str
) -> None:
    """With the replica refusing connections the same reads answer from the primary; the
    replica is tried once, counted once, and health stays healthy."""
    on_primary, primary_marker = await _subscription_in(database_url)
    fallbacks = metrics.snapshot().get(REPLICA_FALLBACK, 0)
    failed_connects = metrics.snapshot().get(metrics.DB_CONNECT_FAILED, 0)
    listed = await staff_client.get("/api/accountant/subscriptions")
    assert listed.status_code == 200
    assert str(on_primary) in {r["organization_id"] for r in listed.json()}
    assert (await staff_client.get("/api/accountant/revenue")).status_code == 200
    audit = (await staff_client.get("/api/provider/audit", params={"limit": 200})).json()
    assert primary_marker in {item["entity_id"] for item in audit["items"]}
    assert metrics.snapshot()[REPLICA_FALLBACK] == fallbacks + 1  # then the back-off holds
    assert metrics.snapshot().get(metrics.DB_CONNECT_FAILED, 0) == failed_connects
    health = (await staff_client.get("/api/health")).json()
    assert health["checks"]["database"] == "ok"
