"""Webhook events stored once per (source, event id): the gate that makes delivery idempotent.

The row is inserted with `ON CONFLICT DO NOTHING` in the same transaction that processes
the event, so a concurrent duplicate waits on the unique index and then sees it done.
A failed event is recorded in a fresh transaction (the processing one rolled back) and is
claimed again by Stripe's retry or by `cortiware stripe replay`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db.base import utcnow
from cortiware.db.models import WebhookEvent

__all__ = [
    "MAX_TYPE_LENGTH",
    "RETRYABLE_STATUSES",
    "Claim",
    "IncomingEvent",
    "claim",
    "claim_many",
    "finish",
    "record_failure",
]

# A stored event in one of these states is processed again when it is delivered again.
RETRYABLE_STATUSES: Final = ("received", "failed")
_MAX_ERROR_CHARS: Final = 2000
MAX_TYPE_LENGTH: Final[int] = WebhookEvent.__table__.c.type.type.length  # type: ignore[attr-defined]
"""The `webhook_events.type` column's length: a longer type cannot be stored."""


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A verified event, as stored."""

    source: str
    event_id: str
    type: str
    payload: dict[str, Any]
    created: int | None
    raw: str | None = None
    """The verified body as received (JSON of `payload`), stored as is when present."""


@dataclass(frozen=True, slots=True)
class Claim:
    """This transaction owns the event's processing; `attempts` counts this attempt."""

    row_id: int
    status: str
    attempts: int


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(WebhookEvent)


# Textual on purpose: SQLAlchemy 2.0 cannot cache the dialect `insert()` constructs
# (`on_conflict_do_nothing` has no cache key), so they are compiled on every call, which
# costs more than the round trip on the hot path. The SQL is the same on PostgreSQL and
# SQLite (3.35+): ON CONFLICT DO NOTHING ... RETURNING.
_CLAIM: Final = text(
    "INSERT INTO webhook_events (source, event_id, type, status, payload, event_created,"
    " attempts, received_at, processed_at)"
    " VALUES (:source, :event_id, :type, :status, :payload, :event_created, 1, :now, :now)"
    " ON CONFLICT (source, event_id) DO NOTHING RETURNING id"
).bindparams(
    bindparam("payload", type_=WebhookEvent.__table__.c.payload.type),
    bindparam("now", type_=WebhookEvent.__table__.c.received_at.type),
)


async def claim(session: AsyncSession, event: IncomingEvent, status: str) -> Claim | None:
    """Store the event (as `status`, assumed to be the outcome) or lock the stored one.

    Returns None when the event is already stored in a final state: a duplicate delivery.
    """
    inserted = await session.execute(
        _CLAIM,
        {
            "source": event.source,
            "event_id": event.event_id,
            "type": event.type,
            "status": status,
            "payload": event.payload,
            "event_created": event.created,
            "now": utcnow(),
        },
    )
    row_id = inserted.scalar_one_or_none()
    if row_id is not None:
        return Claim(row_id=row_id, status=status, attempts=1)
    stored = (
        await session.execute(
            select(WebhookEvent.id, WebhookEvent.status, WebhookEvent.attempts)
            .where(WebhookEvent.source == event.source, WebhookEvent.event_id == event.event_id)
            .with_for_update()
        )
    ).one()
    if stored.status not in RETRYABLE_STATUSES:
        return None
    return await reclaim(session, stored.id, stored.attempts, status)


# PostgreSQL only: one statement stores a whole batch, in event id order (two batches that
# share events take their index locks in the same order, so they never deadlock).
_CLAIM_MANY: Final = text(
    "INSERT INTO webhook_events (source, event_id, type, status, payload, event_created,"
    " attempts, received_at, processed_at)"
    " SELECT :source, e.event_id, e.type, e.status, CAST(e.payload AS jsonb), e.created, 1,"
    " :now, :now FROM unnest(CAST(:event_ids AS varchar[]), CAST(:types AS varchar[]),"
    " CAST(:statuses AS varchar[]), CAST(:payloads AS text[]), CAST(:created AS bigint[]))"
    " AS e(event_id, type, status, payload, created) ORDER BY e.event_id"
    " ON CONFLICT (source, event_id) DO NOTHING RETURNING id, event_id"
).bindparams(bindparam("now", type_=WebhookEvent.__table__.c.received_at.type))


async def claim_many(
    session: AsyncSession, events: Sequence[IncomingEvent], statuses: Sequence[str]
) -> list[Claim | None]:
    """`claim` for several events of one source with distinct ids, in two round trips at
    most (PostgreSQL): one insert for all, one locking read for those already stored."""
    if not events:
        return []
    now = utcnow()
    inserted = await session.execute(
        _CLAIM_MANY,
        {
            "source": events[0].source,
            "event_ids": [e.event_id for e in events],
            "types": [e.type for e in events],
            "statuses": list(statuses),
            "payloads": [e.raw if e.raw is not None else json.dumps(e.payload) for e in events],
            "created": [e.created for e in events],
            "now": now,
        },
    )
    new = {event_id: row_id for row_id, event_id in inserted.all()}
    claims: list[Claim | None] = [
        Claim(row_id=new[e.event_id], status=status, attempts=1) if e.event_id in new else None
        for e, status in zip(events, statuses, strict=True)
    ]
    stored_ids = [e.event_id for e in events if e.event_id not in new]
    if not stored_ids:
        return claims
    stored = {
        row.event_id: row
        for row in await session.execute(
            select(
                WebhookEvent.id, WebhookEvent.event_id, WebhookEvent.status, WebhookEvent.attempts
            )
            .where(
                WebhookEvent.source == events[0].source,
                WebhookEvent.event_id.in_(stored_ids),
            )
            .order_by(WebhookEvent.event_id)
            .with_for_update()
        )
    }
    for index, (event, status) in enumerate(zip(events, statuses, strict=True)):
        row = stored.get(event.event_id)
        if row is not None and row.status in RETRYABLE_STATUSES:
            claims[index] = await reclaim(session, row.id, row.attempts, status)
    return claims


async def reclaim(session: AsyncSession, row_id: int, attempts: int, status: str) -> Claim:
    """Count another processing attempt of a stored (and locked) event."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == row_id)
        .values(status=status, attempts=attempts + 1, error=None, processed_at=utcnow())
    )
    return Claim(row_id=row_id, status=status, attempts=attempts + 1)


async def finish(session: AsyncSession, claimed: Claim, status: str) -> None:
    """Record the outcome when it differs from the status the claim assumed."""
    if status != claimed.status:
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == claimed.row_id).values(status=status)
        )


async def record_failure(session: AsyncSession, event: IncomingEvent, error: str) -> None:
    """Store the event as failed (a new row, or one more attempt of a retryable row).

    Call it in a transaction of its own, after the processing transaction rolled back.
    """
    statement = _insert(session).values(
        source=event.source,
        event_id=event.event_id,
        type=event.type,
        status="failed",
        payload=event.payload,
        event_created=event.created,
        attempts=1,
        error=error[:_MAX_ERROR_CHARS],
        received_at=utcnow(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["source", "event_id"],
            set_={
                "status": "failed",
                "attempts": WebhookEvent.attempts + 1,
                "error": statement.excluded.error,
                "processed_at": None,
            },
            # A concurrent delivery may have processed it meanwhile: that result stands.
            where=WebhookEvent.status.in_(RETRYABLE_STATUSES),
        )
    )
