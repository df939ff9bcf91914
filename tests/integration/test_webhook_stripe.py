"""`POST /api/webhooks/stripe` on PostgreSQL: verification, store-once, sync, replay."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.db.engine import create_engine
from cortiware.db.models import AuditEntry, Subscription
from cortiware.webhooks import stripe_events, subscription_sync
from cortiware.webhooks.ingest import StripeIngest
from tests.integration.conftest import in_loop_client
from tests.support.stripe_fake import (
    create_organization,
    event_row,
    invoice_event,
    invoice_object,
    signed,
    subscription_event,
    subscription_object,
    subscription_row,
)

PRIMARY, SECONDARY = "whsec_test_primary", "whsec_test_secondary"
URL = "/api/webhooks/stripe"
Client = AsyncTestClient[Litestar]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the run's database for the test's own reads and writes (the app's
    engine belongs to the test client's event loop)."""
    engine = create_engine(database_url, pool_size=2)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def _ids() -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:12]
    return f"sub_{suffix}", f"cus_{suffix}", f"evt_{suffix}"


async def _deliver(client: Client, payload: str, secret: str = PRIMARY, **kw: Any) -> Any:
    return await client.post(URL, content=payload, headers=signed(payload, secret, **kw))


async def _listed_status(client: Client, org_id: object) -> str | None:
    """The organization's subscription status in the provider's (cached) organization list."""
    rows = (await client.get("/api/provider/organizations")).json()
    return next(r["subscription_status"] for r in rows if r["id"] == str(org_id))


async def test_bad_signature_missing_header_stale_and_altered_body_are_400(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """Wrong secret, no header, a timestamp older than 300 s and an altered body each get 400."""
    sub, _, evt = _ids()
    payload = subscription_event(
        evt, "customer.subscription.created", int(time.time()), subscription_object(sub)
    )
    wrong = await _deliver(client, payload, "whsec_not_configured")
    missing = await client.post(URL, content=payload)
    stale = await _deliver(client, payload, timestamp=int(time.time()) - 301)
    headers = signed(payload, PRIMARY)
    altered = await client.post(URL, content=payload.replace(sub, sub + "x"), headers=headers)
    for response in (wrong, missing, stale, altered):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await event_row(db, evt) is None


async def test_future_timestamps_and_unstorable_events_are_400_and_not_stored(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """A signature dated beyond the tolerance (the SDK checks only the past), a `created`
    beyond the bigint column and JSON PostgreSQL's jsonb refuses are 400, not a 500."""
    sub, _, evt = _ids()
    now = int(time.time())
    payload = subscription_event(
        evt, "customer.subscription.created", now, subscription_object(sub)
    )
    # Well past the window: `now + 301` is back inside it whenever the service reads
    # the clock in the second after `now` (CI saw that once).
    future = await _deliver(client, payload, timestamp=now + stripe_events.TOLERANCE_SECONDS + 60)
    far_future = await client.post(
        URL, content=payload, headers={"Stripe-Signature": "t=" + "9" * 5000 + ",v1=00"}
    )
    huge = subscription_event(evt, "customer.subscription.created", 2**70, subscription_object(sub))
    long_type = subscription_event(evt, "y" * 200, now, subscription_object(sub))
    nan = payload.replace('"livemode"', '"n": NaN, "livemode"', 1)
    assert nan != payload
    delivered = [await _deliver(client, body) for body in (huge, nan, long_type)]
    for response in (future, far_future, *delivered):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await event_row(db, evt) is None


async def test_event_signed_with_second_secret_is_accepted(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """During rotation an event signed with the second configured secret is processed."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    payload = subscription_event(
        evt,
        "customer.subscription.created",
        int(time.time()),
        subscription_object(sub, customer=customer),
    )
    response = await _deliver(client, payload, SECONDARY)
    assert response.status_code == 200
    assert response.json()["status"] == "processed"


async def test_subscription_event_syncs_row_from_items_and_audits(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """A created event fills status, price and the period from the subscription items."""
    sub, customer, evt = _ids()
    org = await create_organization(db, customer=customer)
    obj = subscription_object(
        sub,
        customer=customer,
        status="trialing",
        price="price_pro",
        amount=4900,
        period_start=1_770_000_000,
        period_end=1_772_600_000,
        cancel_at_period_end=True,
    )
    response = await _deliver(
        client, subscription_event(evt, "customer.subscription.created", 1_770_000_100, obj)
    )
    assert response.status_code == 200, response.text
    row = await subscription_row(db, sub)
    assert row.organization_id == org
    assert (row.status, row.stripe_price_id, row.amount_cents) == ("trialing", "price_pro", 4900)
    assert int(row.current_period_start.timestamp()) == 1_770_000_000
    assert int(row.current_period_end.timestamp()) == 1_772_600_000
    assert row.cancel_at_period_end is True
    assert (row.last_event_created, row.last_event_id) == (1_770_000_100, evt)
    async with db() as session:
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.entity_id == str(row.id)))
    assert audit is not None
    assert (audit.actor, audit.role, audit.request_id) == ("stripe", "system", evt)
    assert audit.changes["after"]["status"] == "trialing"


async def test_metadata_organization_id_finds_the_organization(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """metadata.organization_id links the subscription even when the customer is unknown."""
    sub, customer, evt = _ids()
    org = await create_organization(db)
    obj = subscription_object(sub, customer=customer, organization_id=str(org))
    payload = subscription_event(evt, "customer.subscription.created", 1_770_000_000, obj)
    assert (await _deliver(client, payload)).json()["status"] == "processed"
    assert (await subscription_row(db, sub)).organization_id == org


async def test_duplicate_delivery_is_200_and_not_processed_again(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """The second delivery of one event id answers 200 `duplicate` and changes nothing."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    payload = subscription_event(
        evt,
        "customer.subscription.created",
        1_770_000_000,
        subscription_object(sub, customer=customer),
    )
    before = metrics.snapshot().get("webhooks.stripe.processed", 0)
    first, second = await _deliver(client, payload), await _deliver(client, payload)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert metrics.snapshot()["webhooks.stripe.processed"] - before == 1
    stored = await event_row(db, evt)
    assert (stored.status, stored.attempts) == ("processed", 1)


async def test_older_event_never_overwrites_a_newer_one(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """A late older event is stored as processed but leaves the newer state in place."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    newer = subscription_event(
        evt + "b",
        "customer.subscription.deleted",
        1_770_000_200,
        subscription_object(sub, customer=customer, status="canceled"),
    )
    older = subscription_event(
        evt + "a",
        "customer.subscription.updated",
        1_770_000_100,
        subscription_object(sub, customer=customer, status="past_due"),
    )
    assert (await _deliver(client, newer)).json()["status"] == "processed"
    late = await _deliver(client, older)
    assert late.json() == {"received": True, "id": evt + "a", "status": "processed"}
    row = await subscription_row(db, sub)
    assert (row.status, row.last_event_id) == ("canceled", evt + "b")


async def test_same_second_events_are_ordered_by_event_id(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """Of two events created in the same second, the larger event id wins in any order."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    high = subscription_event(
        evt + "z",
        "customer.subscription.updated",
        1_770_000_000,
        subscription_object(sub, customer=customer, status="active"),
    )
    low = subscription_event(
        evt + "a",
        "customer.subscription.updated",
        1_770_000_000,
        subscription_object(sub, customer=customer, status="unpaid"),
    )
    await _deliver(client, high)
    await _deliver(client, low)
    assert (await subscription_row(db, sub)).status == "active"


async def test_unknown_organization_is_unmatched_then_replayed(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """An event for no known organization is kept as unmatched (200) and replay applies it."""
    sub, customer, evt = _ids()
    payload = subscription_event(
        evt,
        "customer.subscription.created",
        1_770_000_000,
        subscription_object(sub, customer=customer),
    )
    response = await _deliver(client, payload)
    assert response.json()["status"] == "unmatched"
    assert (await event_row(db, evt)).status == "unmatched"
    assert await subscription_row(db, sub) is None
    org = await create_organization(db, customer=customer)
    report = await stripe_events.replay(db)
    assert report.counts.get("processed", 0) >= 1
    assert (await subscription_row(db, sub)).organization_id == org
    stored = await event_row(db, evt)
    assert (stored.status, stored.attempts) == ("processed", 2)


async def test_processing_failure_is_500_kept_failed_and_retried(
    client: Client, db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure answers 500, stores the event as failed, and Stripe's retry processes it."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    payload = subscription_event(
        evt,
        "customer.subscription.created",
        1_770_000_000,
        subscription_object(sub, customer=customer),
    )
    real = subscription_sync.apply_subscription

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(subscription_sync, "apply_subscription", broken)
    failed = await _deliver(client, payload)
    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("application/problem+json")
    stored = await event_row(db, evt)
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert "database hiccup" in stored.error
    assert await subscription_row(db, sub) is None

    monkeypatch.setattr(subscription_sync, "apply_subscription", real)
    retried = await _deliver(client, payload)
    assert retried.json()["status"] == "processed"
    stored = await event_row(db, evt)
    assert (stored.status, stored.attempts, stored.error) == ("processed", 2, None)
    assert (await subscription_row(db, sub)).status == "active"


async def test_a_poison_event_in_a_batch_fails_alone(
    app: Litestar, db: async_sessionmaker[AsyncSession]
) -> None:
    """Concurrent deliveries share a transaction; one that breaks it is retried alone.

    The poison event carries a non-numeric amount, which PostgreSQL refuses: the batch
    rolls back, each event is processed in its own transaction, the poison is answered 500
    and stored as failed, and every other event is processed.
    """
    good = []
    for _ in range(20):
        sub, customer, evt = _ids()
        await create_organization(db, customer=customer)
        obj = subscription_object(sub, customer=customer)
        good.append((evt, sub, subscription_event(evt, "customer.subscription.created", 1, obj)))
    sub, customer, poison_id = _ids()
    await create_organization(db, customer=customer)
    obj = subscription_object(sub, customer=customer)
    obj["items"]["data"][0]["price"]["unit_amount"] = "lots"
    poison = subscription_event(poison_id, "customer.subscription.created", 1, obj)
    payloads = [p for _, _, p in good[:10]] + [poison] + [p for _, _, p in good[10:]]
    before = metrics.snapshot()

    async with in_loop_client(app) as http:
        responses = await asyncio.gather(
            *(http.post(URL, content=p, headers=signed(p, PRIMARY)) for p in payloads)
        )

    after = metrics.snapshot()
    codes = [r.status_code for r in responses]
    assert codes == [200] * 10 + [500] + [200] * 10
    assert all(r.json()["status"] == "processed" for r in responses if r.status_code == 200)
    stored = await event_row(db, poison_id)
    assert (stored.status, stored.attempts) == ("failed", 1)
    for evt, sub, _ in good:
        assert (await event_row(db, evt)).status == "processed"
        assert (await subscription_row(db, sub)).status == "active"
    fallbacks = "webhooks.stripe.batch_fallbacks"
    assert after.get(fallbacks, 0) - before.get(fallbacks, 0) >= 1


async def test_invoice_events_record_the_newest_payment_outcome(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """Invoice events set the last payment outcome; an older one does not overwrite it."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    created = subscription_event(
        evt,
        "customer.subscription.created",
        1_770_000_000,
        subscription_object(sub, customer=customer),
    )
    await _deliver(client, created)
    paid = invoice_event(
        evt + "p",
        "invoice.payment_succeeded",
        1_770_000_300,
        invoice_object(sub, customer=customer, paid_at=1_770_000_290),
    )
    failed_earlier = invoice_event(
        evt + "f", "invoice.payment_failed", 1_770_000_200, invoice_object(sub, customer=customer)
    )
    assert (await _deliver(client, paid)).json()["status"] == "processed"
    assert (await _deliver(client, failed_earlier)).json()["status"] == "processed"
    row = await subscription_row(db, sub)
    assert row.last_payment_status == "succeeded"
    assert int(row.last_payment_at.timestamp()) == 1_770_000_290
    # The payment clock is separate: the subscription guard still holds the created event.
    assert row.last_event_id == evt


async def test_invoice_for_unknown_subscription_is_unmatched(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """An invoice event for a subscription with no row is kept as unmatched for replay."""
    sub, _, evt = _ids()
    payload = invoice_event(evt, "invoice.payment_failed", 1_770_000_000, invoice_object(sub))
    assert (await _deliver(client, payload)).json()["status"] == "unmatched"


async def test_invoices_that_came_before_their_subscription_apply_when_it_is_linked(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """Stripe often sends the first invoice before `customer.subscription.created`: the
    waiting invoices (new and pre-2025-03-31 payload shapes) apply when it is linked."""
    sub, customer, evt = _ids()
    await create_organization(db, customer=customer)
    paid = invoice_event(
        evt + "p",
        "invoice.payment_succeeded",
        1_770_000_300,
        invoice_object(sub, customer=customer, paid_at=1_770_000_290),
    )
    old_shape = invoice_object(None, customer=customer)
    old_shape["subscription"] = sub  # before API 2025-03-31: a top-level field
    failed_earlier = invoice_event(evt + "f", "invoice.payment_failed", 1_770_000_100, old_shape)
    other_sub = invoice_event(
        evt + "o", "invoice.payment_failed", 1_770_000_100, invoice_object(sub + "x")
    )
    for payload in (paid, failed_earlier, other_sub):
        assert (await _deliver(client, payload)).json()["status"] == "unmatched"

    created = subscription_event(
        evt,
        "customer.subscription.created",
        1_770_000_000,
        subscription_object(sub, customer=customer),
    )
    assert (await _deliver(client, created)).json()["status"] == "processed"

    row = await subscription_row(db, sub)
    assert row.last_payment_status == "succeeded"
    assert int(row.last_payment_at.timestamp()) == 1_770_000_290
    assert (await event_row(db, evt + "p")).status == "processed"
    assert (await event_row(db, evt + "f")).status == "processed"  # older: stale
    assert (await event_row(db, evt + "o")).status == "unmatched"  # another subscription


async def test_other_event_types_are_stored_and_ignored(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """An event type the service does not handle answers 200 and is stored as ignored."""
    _, _, evt = _ids()
    payload = subscription_event(
        evt, "charge.succeeded", 1_770_000_000, {"id": "ch_1", "object": "charge"}
    )
    response = await _deliver(client, payload)
    assert response.json()["status"] == "ignored"
    assert (await event_row(db, evt)).status == "ignored"


async def test_first_stripe_subscription_adopts_the_trial_row(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """The organization's not-yet-linked (trial) row becomes the Stripe subscription's row."""
    sub, customer, evt = _ids()
    org = await create_organization(db, customer=customer)
    async with db() as session, session.begin():
        trial = Subscription(organization_id=org, status="trialing", plan_code="basic")
        session.add(trial)
        await session.flush()
        trial_id = trial.id
    payload = subscription_event(
        evt,
        "customer.subscription.created",
        1_770_000_000,
        subscription_object(sub, customer=customer),
    )
    await _deliver(client, payload)
    row = await subscription_row(db, sub)
    assert (row.id, row.status, row.plan_code) == (trial_id, "active", "basic")
    async with db() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.organization_id == org)
        )
    assert count == 1


async def test_processed_event_refreshes_the_cached_organization_list(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """After a processed event the provider's cached organization list shows the new status."""
    from tests.support.auth import login_staff

    sub, customer, evt = _ids()
    org_id = await create_organization(db, customer=customer, name=f"Cached {sub}")
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")

    assert await _listed_status(client, org_id) is None  # cached now, without a subscription
    now = int(time.time())
    created = subscription_event(
        evt, "customer.subscription.created", now, subscription_object(sub, customer=customer)
    )
    assert (await _deliver(client, created)).json()["status"] == "processed"
    assert await _listed_status(client, org_id) == "active"
    updated = subscription_event(
        evt + "u",
        "customer.subscription.updated",
        now + 1,
        subscription_object(sub, customer=customer, status="past_due"),
    )
    assert (await _deliver(client, updated)).json()["status"] == "processed"
    assert await _listed_status(client, org_id) == "past_due"


async def test_a_redelivery_refreshes_the_cache_the_first_delivery_never_invalidated(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """The first delivery committed but died before invalidating (or its answer was lost):
    Stripe redelivers, the event is a duplicate, and the cached list is refreshed anyway."""
    from tests.support.auth import login_staff

    sub, customer, evt = _ids()
    org_id = await create_organization(db, customer=customer, name=f"Lost {sub}")
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")

    assert await _listed_status(client, org_id) is None  # cached now, without a subscription
    payload = subscription_event(
        evt,
        "customer.subscription.created",
        int(time.time()),
        subscription_object(sub, customer=customer),
    )
    # Another process commits the event and never invalidates: no after-commit hook.
    receipt = await StripeIngest(db).submit(stripe_events.parse_event(payload.encode()))
    assert receipt.status == "processed"
    assert await _listed_status(client, org_id) is None  # stale: nobody dropped the cached list
    assert (await _deliver(client, payload)).json()["status"] == "duplicate"
    assert await _listed_status(client, org_id) == "active"


async def test_a_lone_surrogate_is_stored_replaced(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """`jsonb` refuses a lone surrogate (`"\\ud800"`): the event is stored with U+FFFD in its
    place and processed (it was a 500, and the event was never stored)."""
    sub, _, evt = _ids()
    payload = subscription_event(
        evt, "customer.subscription.created", int(time.time()), subscription_object(sub)
    )
    odd = payload.replace('"livemode"', '"note": "a\\ud800b", "livemode"', 1)
    assert odd != payload
    response = await _deliver(client, odd)
    assert response.status_code == 200, response.text
    stored = await event_row(db, evt)
    assert stored is not None
    assert stored.payload["note"] == "a\ufffdb"


async def test_unstorable_characters_in_the_id_or_type_are_replaced_too(
    client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    """The id and type columns refuse U+0000 and lone surrogates like jsonb does: replaced
    before they are read (they were read first: 500, never stored)."""
    now = int(time.time())
    for raw_id, raw_type in (("evt_nul\\u0000", "x.y\\u0000"), ("evt_sur", "\\ud800")):
        suffix = uuid.uuid4().hex[:8]
        body = (
            f'{{"id": "{raw_id}{suffix}", "object": "event", "type": "{raw_type}", '
            f'"created": {now}, "data": {{"object": {{}}}}}}'
        )
        response = await _deliver(client, body)
        assert response.status_code == 200, response.text
        assert "\ufffd" in response.json()["id"] or response.json()["id"].endswith(suffix)
