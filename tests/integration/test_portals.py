"""Owner, accountant and developer endpoints on PostgreSQL and Redis."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.engine import create_engine
from cortiware.db.models import Organization, Owner, Subscription, WebhookEvent
from cortiware.onboarding import hash_password
from tests.conftest import TEST_ENV
from tests.support.auth import login, login_staff

OWNER_PASSWORD = "owner-password-for-tests-0123456789"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database for the test's own loop (the app runs on another)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _organization_with(
    db: async_sessionmaker[AsyncSession], *subs: tuple[str, int, str]
) -> uuid.UUID:
    """An organization with subscriptions of (status, amount_cents, interval)."""
    async with db() as session, session.begin():
        org = Organization(name=f"Org {uuid.uuid4().hex[:6]}")
        session.add(org)
        await session.flush()
        for n, (status, amount, interval) in enumerate(subs):
            session.add(
                Subscription(
                    organization_id=org.id,
                    stripe_subscription_id=f"sub_{uuid.uuid4().hex[:12]}",
                    status=status,
                    amount_cents=amount,
                    currency="usd",
                    interval=interval,
                    current_period_end=datetime.now(UTC) + timedelta(days=30),
                    created_at=datetime.now(UTC) + timedelta(seconds=n),
                )
            )
        return org.id


async def test_accountant_lists_exports_and_sums_revenue(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """Filters, CSV columns and MRR (active + past_due, yearly / 12) are as documented."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "accountant")
    before = (await client.get("/api/accountant/revenue")).json()
    org = await _organization_with(
        db,
        ("active", 5000, "month"),
        ("past_due", 12000, "year"),
        ("trialing", 4900, "month"),
        ("canceled", 9900, "month"),
    )
    listed = await client.get("/api/accountant/subscriptions", params={"organization_id": str(org)})
    assert listed.status_code == 200
    rows = listed.json()
    assert len(rows) == 4
    assert set(rows[0]) == {
        "id",
        "organization_id",
        "stripe_subscription_id",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "updated_at",
    }
    only_active = await client.get(
        "/api/accountant/subscriptions", params={"organization_id": str(org), "status": "active"}
    )
    assert [r["status"] for r in only_active.json()] == ["active"]

    exported = await client.get(
        "/api/accountant/subscriptions.csv", params={"organization_id": str(org)}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["status"] for r in table} == {"active", "past_due", "trialing", "canceled"}
    assert all(r["organization_id"] == str(org) for r in table)

    after = (await client.get("/api/accountant/revenue")).json()
    assert after["mrr_cents"]["usd"] - before["mrr_cents"].get("usd", 0) == 5000 + 1000
    for status in ("active", "past_due", "trialing", "canceled"):
        added = after["counts_by_status"][status] - before["counts_by_status"].get(status, 0)
        assert added == 1
    assert after["mrr_statuses"] == ["active", "past_due"]

    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    assert (await client.get("/api/accountant/revenue")).status_code == 200


async def test_developer_diagnostics_show_no_secret(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """Diagnostics report version, migrations, dependencies, features, unmatched webhooks."""
    async with db() as session, session.begin():
        session.add(
            WebhookEvent(
                source="stripe",
                event_id=f"evt_{uuid.uuid4().hex}",
                type="customer.subscription.updated",
                status="unmatched",
                payload={},
            )
        )
    client.headers["X-CSRF-Token"] = await login_staff(client, "developer")
    response = await client.get("/api/developer/diagnostics")
    assert response.status_code == 200
    body = response.json()
    assert body["migrations"]["up_to_date"] is True
    assert body["migrations"]["head"] == body["migrations"]["current"]
    assert body["dependencies"] == {"database": "ok", "redis": "ok"}
    assert body["features"]["federation_webhooks"] is True
    assert body["features"]["oidc"] is False
    assert body["webhooks"]["unmatched"] >= 1
    for name, value in TEST_ENV.items():
        if any(word in name for word in ("SECRET", "PASSWORD", "KEY")):
            assert value not in response.text, name


async def _owner(db: async_sessionmaker[AsyncSession], org_name: str) -> tuple[uuid.UUID, str]:
    """An organization and its owner (password OWNER_PASSWORD); returns (org id, email)."""
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    async with db() as session, session.begin():
        org = Organization(name=org_name)
        session.add(org)
        await session.flush()
        session.add(
            Owner(
                organization_id=org.id,
                email=email,
                name="Olive",
                password_hash=await hash_password(OWNER_PASSWORD),
            )
        )
        return org.id, email


async def test_owner_sees_only_its_own_organization(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """An owner reads its organization; with no subscription that endpoint is 404."""
    org_id, email = await _owner(db, "Mine")
    await _owner(db, "Theirs")
    client.headers["X-CSRF-Token"] = await login(client, email, OWNER_PASSWORD)
    organization = await client.get("/api/owner/organization")
    assert organization.status_code == 200
    assert organization.json()["id"] == str(org_id)
    assert organization.json()["name"] == "Mine"
    assert (await client.get("/api/owner/subscription")).status_code == 404
    assert (await client.get("/api/provider/organizations")).status_code == 403
    assert (await client.get("/api/accountant/subscriptions")).status_code == 403
