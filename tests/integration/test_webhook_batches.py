"""Group commit under contention: two processes' batches, a link racing an invoice, NULs.

Each `StripeIngest` here stands for one uvicorn worker process: two of them commit
independent batches on the same database, as two workers (or two tasks) do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.db.engine import create_engine
from cortiware.webhooks import stripe_events, subscription_sync
from cortiware.webhooks.ingest import StripeIngest
from cortiware.webhooks.store import IncomingEvent
from tests.support.stripe_fake import (
    create_organization,
    event_row,
    invoice_event,
    invoice_object,
    subscription_event,
    subscription_object,
    subscription_row,
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the run's database."""
    engine = create_engine(database_url, pool_size=6)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def _event(body: str) -> IncomingEvent:
    return stripe_events.parse_event(body.encode())


def _update(event_id: str, sub: str, created: int, customer: str, **kw: Any) -> IncomingEvent:
    obj = subscription_object(sub, customer=customer, **kw)
    return _event(subscription_event(event_id, "customer.subscription.updated", created, obj))


def _invoice(event_id: str, sub: str, created: int, customer: str) -> IncomingEvent:
    obj = invoice_object(sub, customer=customer, paid_at=created)
    return _event(invoice_event(event_id, "invoice.payment_succeeded", created, obj))


async def test_crossing_batches_of_two_processes_do_not_deadlock(
    db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 1 updates X and bills Y while batch 2 updates Y and bills X: each batch takes
    all its locks up front in one order, so neither waits on the other in a cycle (a
    deadlock would roll one back into the one-by-one fallback after `deadlock_timeout`)."""
    run = uuid.uuid4().hex[:8]
    x, y = f"sub_{run}_x", f"sub_{run}_y"
    for customer in (f"cus_{run}_x", f"cus_{run}_y"):
        await create_organization(db, customer=customer)
    setup = StripeIngest(db)
    await setup.submit(_update(f"evt_{run}_x0", x, 100, f"cus_{run}_x"))
    await setup.submit(_update(f"evt_{run}_y0", y, 100, f"cus_{run}_y"))
    real = subscription_sync.apply_newest

    async def slow(session: AsyncSession, items: Any) -> Any:
        applied = await real(session, items)
        await asyncio.sleep(0.3)  # hold the row locks while the other batch starts
        return applied

    monkeypatch.setattr(subscription_sync, "apply_newest", slow)
    first, second = StripeIngest(db), StripeIngest(db)
    batch_1 = [
        _update(f"evt_{run}_x1", x, 200, f"cus_{run}_x", status="past_due"),
        _invoice(f"evt_{run}_iy", y, 201, f"cus_{run}_y"),
    ]
    batch_2 = [
        _update(f"evt_{run}_y1", y, 200, f"cus_{run}_y", status="past_due"),
        _invoice(f"evt_{run}_ix", x, 201, f"cus_{run}_x"),
    ]
    before = metrics.snapshot().get("webhooks.stripe.batch_fallbacks", 0)
    receipts = await asyncio.gather(
        *(first.submit(e) for e in batch_1), *(second.submit(e) for e in batch_2)
    )
    assert [r.status for r in receipts] == ["processed"] * 4
    assert metrics.snapshot().get("webhooks.stripe.batch_fallbacks", 0) == before
    for sub in (x, y):
        row = await subscription_row(db, sub)
        assert (row.status, row.last_payment_status) == ("past_due", "succeeded")


async def test_an_invoice_found_unmatched_during_its_subscriptions_link_is_applied(
    db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invoice's transaction finds no subscription and is still open when another
    process links the subscription: the link waits for it and then applies the invoice."""
    run = uuid.uuid4().hex[:8]
    sub, customer = f"sub_{run}", f"cus_{run}"
    await create_organization(db, customer=customer)
    real = subscription_sync.apply_invoice

    async def slow(session: AsyncSession, obj: Any, ref: Any) -> Any:
        outcome = await real(session, obj, ref)
        await asyncio.sleep(0.3)  # the rest of a long batch, before the commit
        return outcome

    monkeypatch.setattr(subscription_sync, "apply_invoice", slow)
    billing, linking = StripeIngest(db), StripeIngest(db)
    invoice = asyncio.create_task(billing.submit(_invoice(f"evt_{run}_i", sub, 100, customer)))
    await asyncio.sleep(0.1)
    created = subscription_event(
        f"evt_{run}_s",
        "customer.subscription.created",
        99,
        subscription_object(sub, customer=customer),
    )
    link = await linking.submit(_event(created))
    assert (await invoice).status == "unmatched"
    assert link.status == "processed"
    assert (await event_row(db, f"evt_{run}_i")).status == "processed"
    assert (await subscription_row(db, sub)).last_payment_status == "succeeded"


async def test_an_event_with_a_nul_character_is_stored_and_applied(
    db: async_sessionmaker[AsyncSession],
) -> None:
    """PostgreSQL's jsonb refuses U+0000: the event is stored with U+FFFD instead, so it is
    neither lost nor able to fail the batch it arrives in."""
    run = uuid.uuid4().hex[:8]
    sub, customer = f"sub_{run}", f"cus_{run}"
    await create_organization(db, customer=customer)
    obj = subscription_object(sub, customer=customer)
    obj["metadata"]["note"] = "x\u0000y"
    event = _event(subscription_event(f"evt_{run}", "customer.subscription.updated", 1, obj))
    ingest = StripeIngest(db)
    receipts = await asyncio.gather(
        ingest.submit(event), ingest.submit(_update(f"evt_{run}_b", f"{sub}b", 1, customer))
    )
    assert [r.status for r in receipts] == ["processed", "processed"]
    stored = await event_row(db, f"evt_{run}")
    assert stored.payload["data"]["object"]["metadata"]["note"] == "x\ufffdy"
