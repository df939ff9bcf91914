"""1,000 subscription events, each delivered three times in shuffled order, concurrently."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.db.engine import create_engine
from cortiware.db.models import Subscription, WebhookEvent
from tests.integration.conftest import in_loop_client
from tests.support.stripe_fake import (
    create_organization,
    signed,
    subscription_event,
    subscription_object,
)

SUBSCRIPTIONS = 100
EVENTS_PER_SUBSCRIPTION = 10
DELIVERIES = 3
CONCURRENCY = 16
STATUSES = ("trialing", "active", "past_due", "unpaid", "active", "canceled")
PRICES = ("price_basic", "price_pro", "price_team")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the run's database for the test's own reads and writes."""
    engine = create_engine(database_url, pool_size=2)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def _events(
    rng: random.Random, run: str, organizations: list[tuple[uuid.UUID, str]]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every event, and per subscription the event that must win (newest created, then id)."""
    events: list[dict[str, Any]] = []
    newest: dict[str, dict[str, Any]] = {}
    for index, (org, customer) in enumerate(organizations):
        sub = f"sub_{run}_{index:03d}"
        created = 1_770_000_000 + rng.randint(0, 1000)
        for n in range(EVENTS_PER_SUBSCRIPTION):
            created += rng.choice((0, 0, 1, 2, 7))  # many same-second ties
            status = rng.choice(STATUSES)
            kind = "created" if n == 0 else ("deleted" if status == "canceled" else "updated")
            obj = subscription_object(
                sub,
                customer=customer,
                status=status,
                price=rng.choice(PRICES),
                period_end=1_772_000_000 + rng.randint(0, 10**6),
                cancel_at_period_end=rng.random() < 0.3,
                # Half the subscriptions are matched by metadata, half by customer id.
                organization_id=str(org) if index % 2 else None,
            )
            event = {
                "id": f"evt_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
                "type": f"customer.subscription.{kind}",
                "created": created,
                "sub": sub,
                "obj": obj,
            }
            events.append(event)
            best = newest.get(sub)
            if best is None or (created, event["id"]) > (best["created"], best["id"]):
                newest[sub] = event
    return events, newest


async def test_thousand_events_three_times_shuffled_end_in_newest_state_once_each(
    app: Litestar, db: async_sessionmaker[AsyncSession]
) -> None:
    """Every subscription ends in its newest event's state and each event is processed once."""
    rng = random.Random(20261125)
    run = uuid.uuid4().hex[:8]
    organizations = []
    for index in range(SUBSCRIPTIONS):
        customer = f"cus_{run}_{index:03d}"
        # Odd subscriptions carry metadata.organization_id: their org has no customer id.
        org = await create_organization(db, customer=None if index % 2 else customer)
        organizations.append((org, customer))
    events, newest = _events(rng, run, organizations)
    assert len(events) == SUBSCRIPTIONS * EVENTS_PER_SUBSCRIPTION == 1000

    bodies = [
        subscription_event(e["id"], e["type"], e["created"], e["obj"]) for e in events
    ] * DELIVERIES
    rng.shuffle(bodies)
    before = metrics.snapshot()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def deliver(client: httpx.AsyncClient, body: str) -> tuple[int, str]:
        async with gate:
            secret = rng.choice(("whsec_test_primary", "whsec_test_secondary"))
            response = await client.post(
                "/api/webhooks/stripe", content=body, headers=signed(body, secret)
            )
        return response.status_code, response.json().get("status", response.text)

    async with in_loop_client(app) as client:
        results = await asyncio.gather(*(deliver(client, body) for body in bodies))
    assert Counter(code for code, _ in results) == {200: 3000}
    assert Counter(status for _, status in results) == {"processed": 1000, "duplicate": 2000}
    after = metrics.snapshot()
    for name, expected in (("processed", 1000), ("duplicate", 2000), ("failed", 0)):
        key = f"webhooks.stripe.{name}"
        assert after.get(key, 0) - before.get(key, 0) == expected, key
    # Concurrent deliveries were committed together (group commit), not one by one.
    batches = "webhooks.stripe.batches"
    assert after.get(batches, 0) - before.get(batches, 0) > 0
    assert after.get("webhooks.stripe.batch_fallbacks", 0) == before.get(
        "webhooks.stripe.batch_fallbacks", 0
    )

    ids = [e["id"] for e in events]
    async with db() as session:
        stored = (
            await session.execute(
                select(WebhookEvent.event_id, WebhookEvent.status, WebhookEvent.attempts).where(
                    WebhookEvent.source == "stripe", WebhookEvent.event_id.in_(ids)
                )
            )
        ).all()
        rows = {
            row.stripe_subscription_id: row
            for row in (
                await session.execute(
                    select(Subscription).where(Subscription.stripe_subscription_id.in_(newest))
                )
            ).scalars()
        }
    assert len(stored) == 1000
    assert {(status, attempts) for _, status, attempts in stored} == {("processed", 1)}
    assert len(rows) == SUBSCRIPTIONS
    for sub, event in newest.items():
        row, obj = rows[sub], event["obj"]
        item = obj["items"]["data"][0]
        assert (row.last_event_created, row.last_event_id) == (event["created"], event["id"])
        assert row.status == obj["status"], sub
        assert row.stripe_price_id == item["price"]["id"], sub
        assert row.current_period_end is not None
        assert int(row.current_period_end.timestamp()) == item["current_period_end"], sub
        assert row.cancel_at_period_end is obj["cancel_at_period_end"], sub
    expected_orgs = {f"sub_{run}_{i:03d}": org for i, (org, _) in enumerate(organizations)}
    assert {sub: row.organization_id for sub, row in rows.items()} == expected_orgs
    json.dumps(results)  # the answers are plain JSON values
