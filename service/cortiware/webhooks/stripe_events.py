"""Stripe events: signature check with the SDK, store-once, dispatch, replay.

`receive` is the whole ingest path of one delivery (the HTTP handler only adds transport),
so the endpoint, `cortiware stripe replay` and the benchmark share it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import stripe
import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.cache import GROUP_ORGANIZATIONS, Cache
from cortiware.cache.read_through import invalidate_after_commit
from cortiware.db.base import utcnow
from cortiware.db.models import WebhookEvent
from cortiware.db.session import transaction
from cortiware.logging import scrub_text
from cortiware.webhooks import payload as webhook_payload
from cortiware.webhooks import store, subscription_sync
from cortiware.webhooks.store import Claim, IncomingEvent
from cortiware.webhooks.subscription_sync import EventRef, Outcome

__all__ = [
    "HANDLED_EVENT_TYPES",
    "SOURCE",
    "TOLERANCE_SECONDS",
    "InvalidEvent",
    "ProcessingFailed",
    "Receipt",
    "ReplayReport",
    "apply_waiting_invoices",
    "parse_event",
    "receive",
    "receive_many",
    "replay",
    "verify_signature",
]

SOURCE: Final = "stripe"
TOLERANCE_SECONDS: Final = 300
MAX_CREATED: Final = 10**11
"""Event `created` must be a Unix time below this (year 5138); the column is a bigint."""
SUBSCRIPTION_EVENTS: Final = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_EVENTS: Final = frozenset({"invoice.payment_succeeded", "invoice.payment_failed"})
HANDLED_EVENT_TYPES: Final = tuple(sorted(SUBSCRIPTION_EVENTS | INVOICE_EVENTS))
log = structlog.get_logger("cortiware.webhooks.stripe")


class InvalidEvent(ValueError):
    """The delivery is not an authentic, fresh, well-formed Stripe event (answer 400)."""


class ProcessingFailed(RuntimeError):
    """Processing raised; the event is stored as failed for Stripe's retry or replay."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of one delivery."""

    event_id: str
    status: str
    """processed | unmatched | ignored | duplicate"""
    outcome: str | None = None
    """The sync outcome when processed (`stale` when a newer event already applied)."""


def verify_signature(payload: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Check `Stripe-Signature` with the SDK against every configured secret (rotation).

    The SDK compares signatures in constant time and rejects timestamps older than the
    tolerance. Raises InvalidEvent when no secret verifies it.
    """
    if not header:
        raise InvalidEvent("missing Stripe-Signature header")
    # The SDK refuses timestamps older than the tolerance, not ones from the future.
    stamp = next((p[2:] for p in header.split(",") if p.startswith("t=")), "")
    if not re.fullmatch(r"[0-9]{1,12}", stamp):  # ASCII digits only: "²".isdigit() is True
        raise InvalidEvent("Stripe-Signature has no t= Unix time")
    if int(stamp) > time.time() + TOLERANCE_SECONDS:
        raise InvalidEvent("timestamp is in the future, outside the tolerance zone")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("body is not UTF-8") from None
    reason = "no webhook secret configured"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            reason = str(exc.user_message or exc)
            continue
        return
    raise InvalidEvent(reason)


def parse_event(payload: bytes) -> IncomingEvent:
    """The stored form of a verified event body; raise InvalidEvent when it is not one."""
    try:
        # Cleaned before the id and type are read: their columns refuse what jsonb refuses.
        body, cleaned = webhook_payload.loads(payload)
    except ValueError as exc:
        raise InvalidEvent(f"body is not JSON PostgreSQL can store: {exc}") from None
    if not isinstance(body, dict) or body.get("object") != "event":
        raise InvalidEvent("body is not a Stripe event")
    # The body as received is stored as is, unless it had to be cleaned.
    raw = None if cleaned else payload.decode("utf-8")
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise InvalidEvent("event id missing")
    if not isinstance(event_type, str) or not isinstance(created, int):
        raise InvalidEvent("event type or created missing")
    if not 0 < created < MAX_CREATED:
        raise InvalidEvent("event created is not a plausible Unix time")
    if len(event_type) > store.MAX_TYPE_LENGTH:
        raise InvalidEvent(f"event type is longer than {store.MAX_TYPE_LENGTH} characters")
    if not isinstance(_object_of(body), Mapping):
        raise InvalidEvent("event has no data.object")
    return IncomingEvent(SOURCE, event_id, event_type, body, created, raw)


def _object_of(payload: Mapping[str, Any]) -> Any:
    data = payload.get("data")
    return data.get("object") if isinstance(data, Mapping) else None


async def apply_waiting_invoices(session: AsyncSession, stripe_subscription_id: str) -> int:
    """Apply the invoice events stored as `unmatched` for a subscription that now has its
    row (Stripe often sends `invoice.payment_succeeded` before
    `customer.subscription.created`), in the transaction that linked it; returns how many.

    Rows another transaction holds are skipped (`SKIP LOCKED`): a concurrent delivery or
    `stripe replay` is processing them.
    """
    found = WebhookEvent.payload[("data", "object", "subscription")].as_string()
    found_new = WebhookEvent.payload[
        ("data", "object", "parent", "subscription_details", "subscription")
    ].as_string()
    rows = (
        await session.execute(
            select(WebhookEvent)
            .where(
                WebhookEvent.source == SOURCE,
                WebhookEvent.status == Outcome.UNMATCHED.value,
                WebhookEvent.type.in_(INVOICE_EVENTS),
                or_(found == stripe_subscription_id, found_new == stripe_subscription_id),
            )
            .order_by(WebhookEvent.event_created, WebhookEvent.id)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    applied = 0
    for row in rows:
        event = IncomingEvent(row.source, row.event_id, row.type, row.payload, row.event_created)
        outcome = await subscription_sync.apply_invoice(
            session, _object_of(row.payload), _ref(event)
        )
        if outcome is Outcome.UNMATCHED:
            continue
        row.status = Outcome.PROCESSED.value if outcome is Outcome.STALE else outcome.value
        row.attempts += 1
        row.processed_at = utcnow()
        metrics.counter("webhooks.stripe.unmatched_applied").inc()
        applied += 1
    return applied


def _expected_status(event_type: str) -> str:
    handled = event_type in SUBSCRIPTION_EVENTS or event_type in INVOICE_EVENTS
    return Outcome.PROCESSED.value if handled else Outcome.IGNORED.value


async def _apply(session: AsyncSession, event: IncomingEvent) -> Outcome:
    ref = _ref(event)
    obj = _object_of(event.payload)
    if event.type in SUBSCRIPTION_EVENTS:
        return await subscription_sync.apply_subscription(
            session, obj, ref, on_linked=apply_waiting_invoices
        )
    if event.type in INVOICE_EVENTS:
        return await subscription_sync.apply_invoice(session, obj, ref)
    return Outcome.IGNORED


async def _process(session: AsyncSession, event: IncomingEvent, claimed: Claim) -> Receipt:
    return await _finish(session, event, claimed, await _apply(session, event))


async def receive(session: AsyncSession, event: IncomingEvent) -> Receipt:
    """Store and process one delivery in the session's transaction (the caller commits).

    A duplicate of an event already stored in a final state is answered without
    processing. On failure the session is rolled back, the event is stored as failed
    (still uncommitted: the caller commits) and ProcessingFailed is raised.
    """
    claimed = await store.claim(session, event, _expected_status(event.type))
    if claimed is None:
        metrics.counter("webhooks.stripe.duplicate").inc()
        return Receipt(event.event_id, "duplicate")
    try:
        return await _process(session, event, claimed)
    except Exception as exc:
        await _fail(session, event, exc)
        raise ProcessingFailed(event.event_id) from exc


async def receive_many(session: AsyncSession, events: Sequence[IncomingEvent]) -> list[Receipt]:
    """`receive` for a batch of deliveries in one transaction (PostgreSQL; the caller commits).

    Costs a few round trips for the whole batch instead of several per event: one insert
    stores every event (`store.claim_many`), one statement applies the newest event of each
    subscription that already has a row (`subscription_sync.apply_newest`), one executemany
    writes their audit rows. Older events of a subscription in the same batch are stale by
    construction. Everything else (a subscription seen for the first time, a stale newest
    event, invoices, other types) goes through the one-event path in the same transaction.
    A repeated id within the batch is a duplicate delivery. Any exception propagates: the
    caller rolls back and processes the events one by one (`receive`), which records
    failures per event.
    """
    receipts: list[Receipt | None] = [None] * len(events)
    first: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.event_id in first:
            receipts[index] = Receipt(event.event_id, "duplicate")
        else:
            first[event.event_id] = index
    unique = [events[i] for i in first.values()]
    claims = await store.claim_many(session, unique, [_expected_status(e.type) for e in unique])
    claimed: list[tuple[IncomingEvent, Claim]] = []
    for event, claim in zip(unique, claims, strict=True):
        if claim is None:
            receipts[first[event.event_id]] = Receipt(event.event_id, "duplicate")
        else:
            claimed.append((event, claim))
    newest, older, rest = _by_subscription(claimed)
    await subscription_sync.lock_for_batch(session, _subscription_ids(claimed))
    applied = await subscription_sync.apply_newest(
        session,
        [(_object_of(e.payload), _ref(e)) for e, _ in sorted(newest.values(), key=_by_object)],
    )
    outcome_of: dict[str, Outcome] = {}
    for stripe_id, (event, claim) in newest.items():
        if stripe_id in applied:
            outcome_of[stripe_id] = Outcome.PROCESSED
            receipt = await _finish(session, event, claim, Outcome.PROCESSED)
        else:
            outcome = await _apply(session, event)
            outcome_of[stripe_id] = outcome
            receipt = await _finish(session, event, claim, outcome)
        receipts[first[event.event_id]] = receipt
    for event, claim, stripe_id in older:
        # Unmatched or ignored like its newest sibling (so replay finds it), else stale.
        newer = outcome_of[stripe_id]
        outcome = newer if newer in (Outcome.UNMATCHED, Outcome.IGNORED) else Outcome.STALE
        receipts[first[event.event_id]] = await _finish(session, event, claim, outcome)
    for event, claim in rest:
        receipts[first[event.event_id]] = await _process(session, event, claim)
    return _counted(receipts)


def _counted(receipts: list[Receipt | None]) -> list[Receipt]:
    done: list[Receipt] = []
    for receipt in receipts:
        assert receipt is not None  # `receive_many` fills every index
        if receipt.status == "duplicate":
            metrics.counter("webhooks.stripe.duplicate").inc()
        done.append(receipt)
    return done


_Claimed = tuple[IncomingEvent, Claim]


def _subscription_ids(claimed: list[_Claimed]) -> list[str]:
    """The Stripe subscriptions the events of a batch may lock."""
    ids = []
    for event, _ in claimed:
        obj = _object_of(event.payload)
        if event.type in SUBSCRIPTION_EVENTS and obj.get("id"):
            ids.append(str(obj["id"]))
        elif event.type in INVOICE_EVENTS:
            found = subscription_sync.invoice_subscription_id(obj)
            if found is not None:
                ids.append(found)
    return ids


def _by_subscription(
    claimed: list[_Claimed],
) -> tuple[dict[str, _Claimed], list[tuple[IncomingEvent, Claim, str]], list[_Claimed]]:
    """Split a batch: the newest event per subscription (the only one that can apply),
    the older ones (with their subscription id), and the events of other types."""
    newest: dict[str, _Claimed] = {}
    older: list[tuple[IncomingEvent, Claim, str]] = []
    rest: list[_Claimed] = []
    for event, claim in claimed:
        obj = _object_of(event.payload)
        if event.type not in SUBSCRIPTION_EVENTS or not obj.get("id"):
            rest.append((event, claim))
            continue
        stripe_id = str(obj["id"])
        current = newest.get(stripe_id)
        if current is None:
            newest[stripe_id] = (event, claim)
        elif _order(event) > _order(current[0]):
            older.append((*current, stripe_id))
            newest[stripe_id] = (event, claim)
        else:
            older.append((event, claim, stripe_id))
    return newest, older, rest


def _order(event: IncomingEvent) -> tuple[int, str]:
    return (event.created or 0, event.event_id)


def _by_object(item: tuple[IncomingEvent, Claim]) -> str:
    return str(_object_of(item[0].payload)["id"])


def _ref(event: IncomingEvent) -> EventRef:
    return EventRef(id=event.event_id, type=event.type, created=event.created or 0)


async def _finish(
    session: AsyncSession, event: IncomingEvent, claimed: Claim, outcome: Outcome
) -> Receipt:
    status = Outcome.PROCESSED.value if outcome is Outcome.STALE else outcome.value
    await store.finish(session, claimed, status)
    metrics.counter(f"webhooks.stripe.{status}").inc()
    return Receipt(event.event_id, status, outcome.value)


async def _fail(session: AsyncSession, event: IncomingEvent, exc: Exception) -> None:
    log.error("stripe_event_failed", event_id=event.event_id, type=event.type, exc_info=exc)
    metrics.counter("webhooks.stripe.failed").inc()
    await session.rollback()
    await store.record_failure(session, event, scrub_text(f"{type(exc).__name__}: {exc}"))


@dataclass
class ReplayReport:
    """What `replay` did, by resulting status."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Events looked at."""
        return sum(self.counts.values())


async def replay(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    since: datetime | None = None,
    statuses: Sequence[str] = ("failed", "unmatched"),
    cache: Cache | None = None,
) -> ReplayReport:
    """Process stored Stripe events in `statuses` again, oldest event first, each in its
    own transaction; the newest-event guard keeps the result correct in any order. Once an
    event that was processed commits, the cached organization views are dropped from
    `cache` (they show subscription status)."""
    query = (
        select(WebhookEvent.id)
        .where(WebhookEvent.source == SOURCE, WebhookEvent.status.in_(statuses))
        .order_by(WebhookEvent.event_created, WebhookEvent.id)
    )
    if since is not None:
        query = query.where(WebhookEvent.received_at >= since)
    async with sessionmaker() as session:
        ids = list((await session.execute(query)).scalars())
    counts: dict[str, int] = {}
    for row_id in ids:
        async with transaction(sessionmaker) as session:
            status = await _replay_one(session, row_id, statuses)
            if status == Outcome.PROCESSED.value:
                invalidate_after_commit(session, cache, GROUP_ORGANIZATIONS)
        counts[status] = counts.get(status, 0) + 1
    return ReplayReport(counts)


async def _replay_one(session: AsyncSession, row_id: int, statuses: Sequence[str]) -> str:
    row = (
        await session.execute(
            select(WebhookEvent).where(WebhookEvent.id == row_id).with_for_update()
        )
    ).scalar_one()
    if row.status not in statuses:
        return "skipped"  # a delivery processed it meanwhile
    event = IncomingEvent(row.source, row.event_id, row.type, row.payload, row.event_created)
    claimed = await store.reclaim(session, row.id, row.attempts, _expected_status(row.type))
    try:
        return (await _process(session, event, claimed)).status
    except Exception as exc:
        await _fail(session, event, exc)
        return "failed"
