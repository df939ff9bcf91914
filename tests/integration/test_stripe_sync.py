"""`cortiware stripe sync` and `stripe replay` on PostgreSQL with the fake Stripe."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.billing.sync import sync_subscriptions
from cortiware.cache import Cache
from cortiware.cli import main
from cortiware.db.engine import create_engine
from cortiware.kv import KV, KVConfig
from cortiware.organizations.service import OrganizationService
from cortiware.webhooks import stripe_events
from cortiware.webhooks.store import IncomingEvent
from tests.conftest import TEST_ENV, SettingsFactory
from tests.support.stripe_fake import (
    FakeStripe,
    create_organization,
    event_row,
    fake_client,
    subscription_object,
    subscription_row,
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the run's database for the test's own reads and writes."""
    engine = create_engine(database_url, pool_size=2)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def _receive(db: async_sessionmaker[AsyncSession], event: IncomingEvent) -> str:
    async with db() as session:
        receipt = await stripe_events.receive(session, event)
        await session.commit()
    return receipt.status


def _event(event_id: str, created: int, obj: dict[str, object]) -> IncomingEvent:
    payload = {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": created,
        "data": {"object": obj},
    }
    return IncomingEvent("stripe", event_id, payload["type"], payload, created)  # type: ignore[arg-type]


async def test_sync_reports_each_difference_and_reconciles(
    make_settings: SettingsFactory, db: async_sessionmaker[AsyncSession]
) -> None:
    """Sync lists every difference, updates the row, and links unknown local subscriptions."""
    suffix = uuid.uuid4().hex[:10]
    customer, drifted, missing, stranger = (
        f"cus_{suffix}",
        f"sub_{suffix}a",
        f"sub_{suffix}b",
        f"sub_{suffix}c",
    )
    org = await create_organization(db, customer=customer)
    old = subscription_object(drifted, customer=customer, status="active", price="price_basic")
    assert await _receive(db, _event(f"evt_{suffix}", 1_700_000_000, old)) == "processed"

    fake = FakeStripe()
    fake.subscriptions[drifted] = subscription_object(
        drifted, customer=customer, status="past_due", price="price_pro", cancel_at_period_end=True
    )
    fake.subscriptions[missing] = subscription_object(missing, customer=customer)
    fake.subscriptions[stranger] = subscription_object(stranger, customer="cus_nobody")
    report = await sync_subscriptions(fake_client(make_settings(), fake), db)

    changed = {(d.stripe_subscription_id, d.field) for d in report.differences}
    assert {
        (drifted, "status"),
        (drifted, "stripe_price_id"),
        (drifted, "cancel_at_period_end"),
    } <= changed
    assert report.created == [missing]
    assert report.unmatched == [stranger]
    row = await subscription_row(db, drifted)
    assert (row.status, row.stripe_price_id, row.cancel_at_period_end) == (
        "past_due",
        "price_pro",
        True,
    )
    assert (await subscription_row(db, missing)).organization_id == org
    (listing,) = fake.calls("GET", "/v1/subscriptions")
    assert listing.params["status"] == "all"


async def test_event_created_after_the_sync_still_wins(
    make_settings: SettingsFactory, db: async_sessionmaker[AsyncSession]
) -> None:
    """Sync counts as an event created when it started: a later webhook event overrides it."""
    suffix = uuid.uuid4().hex[:10]
    customer, sub = f"cus_{suffix}", f"sub_{suffix}"
    await create_organization(db, customer=customer)
    fake = FakeStripe()
    fake.subscriptions[sub] = subscription_object(sub, customer=customer, status="active")
    await sync_subscriptions(fake_client(make_settings(), fake), db)
    older = subscription_object(sub, customer=customer, status="incomplete")
    newer = subscription_object(sub, customer=customer, status="canceled")
    now = int(time.time())
    await _receive(db, _event(f"evt_{suffix}old", now - 3600, older))
    assert (await subscription_row(db, sub)).status == "active"
    await _receive(db, _event(f"evt_{suffix}new", now + 5, newer))
    assert (await subscription_row(db, sub)).status == "canceled"


def test_replay_command_processes_unmatched_events_since(isolated_database_url: str) -> None:
    """`cortiware stripe replay --since 1h` re-processes unmatched events once matched."""
    database_url = isolated_database_url
    suffix = uuid.uuid4().hex[:10]
    customer, sub, evt = f"cus_{suffix}", f"sub_{suffix}", f"evt_{suffix}"

    async def before() -> str:
        engine = create_engine(database_url, pool_size=1)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            status = await _receive(
                sessions, _event(evt, 1_770_000_000, subscription_object(sub, customer=customer))
            )
            await create_organization(sessions, customer=customer)
            return status
        finally:
            await engine.dispose()

    async def after() -> tuple[str, int, str | None]:
        engine = create_engine(database_url, pool_size=1)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            stored = await event_row(sessions, evt)
            row = await subscription_row(sessions, sub)
            return stored.status, stored.attempts, row.status if row else None
        finally:
            await engine.dispose()

    assert asyncio.run(before()) == "unmatched"
    env = {**TEST_ENV, "DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["stripe", "replay", "--since", "1h"], env=env)
    assert result.exit_code == 0, result.output
    assert "processed" in result.output
    assert asyncio.run(after()) == ("processed", 2, "active")


async def _organization_status(
    db: async_sessionmaker[AsyncSession], cache: Cache, org_id: uuid.UUID
) -> str | None:
    """The organization's subscription status in the provider's (cached) list."""
    async with db() as session:
        listed = await OrganizationService(session=session, cache=cache).summaries()
    return next(o.subscription_status for o in listed if o.id == org_id)


async def test_sync_drops_the_cached_organization_views(
    make_settings: SettingsFactory,
    db: async_sessionmaker[AsyncSession],
    redis_url: str,
    redis_prefix: str,
) -> None:
    """After a sync changed a subscription, the cached organization list shows the change."""
    suffix = uuid.uuid4().hex[:10]
    customer, sub = f"cus_{suffix}", f"sub_{suffix}"
    org_id = await create_organization(db, customer=customer)
    kv = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix, command_timeout=2))
    cache = Cache(kv)
    try:
        assert await _organization_status(db, cache, org_id) is None  # cached without one
        fake = FakeStripe()
        fake.subscriptions[sub] = subscription_object(sub, customer=customer, status="past_due")
        await sync_subscriptions(fake_client(make_settings(), fake), db, cache=cache)
        assert await _organization_status(db, cache, org_id) == "past_due"
    finally:
        await kv.aclose()


def test_replay_command_drops_the_cached_organization_views(
    isolated_database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """`cortiware stripe replay` that processes an event invalidates the `organizations`
    cache group on the shared Redis, so every instance reads the new status."""
    database_url = isolated_database_url
    suffix = uuid.uuid4().hex[:10]
    customer, sub, evt = f"cus_{suffix}", f"sub_{suffix}", f"evt_{suffix}"
    version = {"n": 1}

    async def fetch() -> dict[str, int]:
        return dict(version)

    async def cached() -> dict[str, int]:
        kv = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix, command_timeout=2))
        try:
            value: dict[str, int] = await Cache(kv).cached("organizations:list", 300, fetch)
            return value
        finally:
            await kv.aclose()

    async def before() -> str:
        engine = create_engine(database_url, pool_size=1)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            status = await _receive(
                sessions, _event(evt, 1_770_000_000, subscription_object(sub, customer=customer))
            )
            await create_organization(sessions, customer=customer)
            return status
        finally:
            await engine.dispose()

    assert asyncio.run(before()) == "unmatched"
    assert asyncio.run(cached()) == {"n": 1}
    version["n"] = 2
    assert asyncio.run(cached()) == {"n": 1}  # still the cached copy
    env = {
        **TEST_ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CORTIWARE_REDIS_PREFIX": redis_prefix,
        "CORTIWARE_REDIS_TIMEOUT": "2",
    }
    result = CliRunner().invoke(main, ["stripe", "replay"], env=env)
    assert result.exit_code == 0, result.output
    assert "processed 1" in result.output
    assert asyncio.run(cached()) == {"n": 2}
