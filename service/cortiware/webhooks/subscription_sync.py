"""Keep `subscriptions` in step with Stripe subscription and invoice objects.

Each subscription carries the (created, id) of the newest event applied to it, once for
the subscription fields and once for the payment fields. The row is locked (`FOR UPDATE`)
before the comparison, so of two concurrent events the newer one always wins, and an older
event arriving late changes nothing. Events created in the same second are ordered by id.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Row,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware import audit
from cortiware.db.models import Organization, Plan, Price, Subscription

__all__ = [
    "STRIPE_SUBSCRIPTION_FIELDS",
    "SUBSCRIPTION_FIELDS",
    "EventRef",
    "Outcome",
    "apply_invoice",
    "apply_newest",
    "apply_subscription",
    "invoice_subscription_id",
    "is_newer",
    "lock_for_batch",
    "newer_sql",
    "newer_sql_text",
    "subscription_values",
]

STRIPE_ACTOR: Final = audit.Actor(name="stripe", role="system")
# The columns read from a Stripe subscription object (`stripe sync` compares these).
STRIPE_SUBSCRIPTION_FIELDS: Final = (
    "status",
    "stripe_price_id",
    "amount_cents",
    "currency",
    "interval",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "trial_end",
)
# The columns a subscription event writes (and the audit row compares): plus the plan
# derived from the price.
SUBSCRIPTION_FIELDS: Final = (*STRIPE_SUBSCRIPTION_FIELDS, "plan_code")
_PAYMENT_FIELDS: Final = ("last_payment_status", "last_payment_at")


class Outcome(StrEnum):
    """What an event did; the first three are also the stored event's status."""

    PROCESSED = "processed"
    UNMATCHED = "unmatched"
    IGNORED = "ignored"
    STALE = "stale"
    """Older than what the subscription already shows: stored as processed, changed nothing."""


@dataclass(frozen=True, slots=True)
class EventRef:
    """The event being applied: its id, type and creation time (epoch seconds)."""

    id: str
    type: str
    created: int


# The "newer event wins" rule, in Python (`is_newer`) and in SQL (`newer_sql`, used by the
# single-event and the batch UPDATE). Event ids compare in code point order: Python's string
# order, and the "C" collation in SQL whatever the database's default collation (under
# en_US, "evt_a" < "evt_B", the reverse of Python's order). A property test runs all three
# paths on random event orders.


def is_newer(event: EventRef, last_created: int | None, last_id: str | None) -> bool:
    """True when `event` comes after the last applied (created, id); ties go by id."""
    if last_created is None:
        return True
    return (event.created, event.id) > (last_created, last_id or "")


def newer_sql(
    last_created: ColumnElement[Any],
    last_id: ColumnElement[Any],
    created: ColumnElement[Any],
    event_id: ColumnElement[Any],
) -> ColumnElement[bool]:
    """`is_newer` as a SQL condition (PostgreSQL): (created, event_id) after the last applied."""
    return or_(
        last_created.is_(None),
        tuple_(last_created, func.coalesce(last_id, "").collate("C"))
        < tuple_(created, event_id.collate("C")),
    )


def newer_sql_text(last: str, new: str) -> str:
    """`newer_sql` as PostgreSQL text over the columns of the table aliases `last` and `new`."""
    columns: list[ColumnElement[Any]] = [
        literal_column(f"{alias}.{name}")
        for alias in (last, new)
        for name in ("last_event_created", "last_event_id")
    ]
    condition = newer_sql(*columns)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
    return str(condition.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value is not None else None


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def subscription_values(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a Stripe subscription object (period read from its first item)."""
    items = _get(obj, "items", "data") or []
    item: Mapping[str, Any] = items[0] if items else {}
    price: Mapping[str, Any] = item.get("price") or {}
    # API 2025-03-31 moved current_period_* from the subscription to its items; older
    # payloads still have them at the top, used only when the item has none.
    start = item.get("current_period_start", obj.get("current_period_start"))
    end = item.get("current_period_end", obj.get("current_period_end"))
    return {
        "status": str(obj.get("status") or "incomplete"),
        "stripe_price_id": price.get("id"),
        "amount_cents": price.get("unit_amount"),
        "currency": price.get("currency"),
        "interval": _get(price, "recurring", "interval"),
        "current_period_start": _timestamp(start),
        "current_period_end": _timestamp(end),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "trial_end": _timestamp(obj.get("trial_end")),
    }


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills (API 2025-03-31+: under `parent`), if any."""
    found = _get(invoice, "parent", "subscription_details", "subscription")
    if found is None:
        found = invoice.get("subscription")  # before 2025-03-31
    if isinstance(found, Mapping):  # expanded
        found = found.get("id")
    return str(found) if found else None


_LOCKED_COLUMNS: Final = (
    Subscription.id,
    Subscription.organization_id,
    Subscription.last_event_created,
    Subscription.last_event_id,
    Subscription.last_payment_event_created,
    Subscription.last_payment_event_id,
    *(getattr(Subscription, name) for name in (*SUBSCRIPTION_FIELDS, *_PAYMENT_FIELDS)),
)


# One PostgreSQL advisory lock per Stripe subscription id (class 7301, key its hashtext),
# taken before a transaction decides "no row for this subscription" (an invoice stored as
# unmatched) or creates that row (a link). The two cannot interleave: a link then sees
# every invoice that was found unmatched, and an invoice sees a link that committed.
_ADVISORY_ONE: Final = text("SELECT pg_advisory_xact_lock(7301, hashtext(:k))")
# A batch takes all of its locks up front in one global order (advisory locks by key, then
# rows by id), so two batches touching the same subscriptions never deadlock. One round
# trip: the advisory locks are an uncorrelated sub-select, which PostgreSQL runs once as a
# one-time filter before it scans (and locks) any row.
_LOCK_BATCH: Final = text(
    "SELECT s.id FROM subscriptions AS s"
    " WHERE s.stripe_subscription_id = ANY(CAST(:ids AS varchar[]))"
    " AND (SELECT count(pg_advisory_xact_lock(7301, h)) FROM (SELECT DISTINCT hashtext(k)"
    " AS h FROM unnest(CAST(:ids AS varchar[])) AS k ORDER BY h) AS keys) >= 0"
    " ORDER BY s.id FOR UPDATE"
)


async def _serialize_linking(session: AsyncSession, stripe_subscription_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":  # SQLite has one writer anyway
        await session.execute(_ADVISORY_ONE, {"k": stripe_subscription_id})


async def lock_for_batch(session: AsyncSession, stripe_subscription_ids: Sequence[str]) -> None:
    """Take every lock a batch's events may need, in the one global order (PostgreSQL)."""
    ids = sorted(set(stripe_subscription_ids))
    if ids:
        await session.execute(_LOCK_BATCH, {"ids": ids})


async def _locked(session: AsyncSession, stripe_subscription_id: str) -> Row[Any] | None:
    result = await session.execute(
        select(*_LOCKED_COLUMNS)
        .where(Subscription.stripe_subscription_id == stripe_subscription_id)
        .with_for_update()
    )
    return result.one_or_none()


async def _organization_for(session: AsyncSession, obj: Mapping[str, Any]) -> uuid.UUID | None:
    """metadata.organization_id when it names an organization, else the customer's."""
    try:
        from_metadata = uuid.UUID(str(_get(obj, "metadata", "organization_id")))
    except ValueError:
        from_metadata = None
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    conditions = []
    if from_metadata is not None:
        conditions.append(Organization.id == from_metadata)
    if customer:
        conditions.append(Organization.stripe_customer_id == str(customer))
    if not conditions:
        return None
    found = list(
        (await session.execute(select(Organization.id).where(or_(*conditions)).limit(2))).scalars()
    )
    if from_metadata in found:
        return from_metadata
    return found[0] if found else None


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Subscription)


async def _link(
    session: AsyncSession, organization_id: uuid.UUID, stripe_subscription_id: str, status: str
) -> Row[Any] | None:
    """Adopt the organization's not-yet-linked row (its trial), else insert one; locked."""
    unlinked = (
        select(Subscription.id)
        .where(
            Subscription.organization_id == organization_id,
            Subscription.stripe_subscription_id.is_(None),
        )
        .order_by(Subscription.created_at)
        .limit(1)
        .scalar_subquery()
    )
    adopted = await session.execute(
        update(Subscription)
        .where(Subscription.id == unlinked, Subscription.stripe_subscription_id.is_(None))
        .values(stripe_subscription_id=stripe_subscription_id)
        .returning(*_LOCKED_COLUMNS)
    )
    row = adopted.one_or_none()
    if row is not None:
        return row
    inserted = await session.execute(
        _insert(session)
        .values(
            id=uuid.uuid4(),
            organization_id=organization_id,
            stripe_subscription_id=stripe_subscription_id,
            status=status,
        )
        .on_conflict_do_nothing(index_elements=["stripe_subscription_id"])
        .returning(*_LOCKED_COLUMNS)
    )
    row = inserted.one_or_none()
    # None: a concurrent event inserted it first (now committed); lock that row instead.
    return row if row is not None else await _locked(session, stripe_subscription_id)


async def apply_subscription(
    session: AsyncSession,
    obj: Mapping[str, Any],
    event: EventRef,
    *,
    on_linked: Callable[[AsyncSession, str], Awaitable[object]] | None = None,
) -> Outcome:
    """Apply a `customer.subscription.*` event's object unless a newer event already did.

    `on_linked(session, stripe_subscription_id)` runs in the same transaction when this
    event gives the Stripe subscription its row (events that waited for it can apply).
    """
    stripe_id = str(obj["id"])
    if session.get_bind().dialect.name == "postgresql" and await _update_if_newer(
        session, stripe_id, obj, event
    ):
        return Outcome.PROCESSED
    # The row is new, the event is stale, or this is SQLite: lock, compare, then write.
    row = await _locked(session, stripe_id)
    created = False
    if row is None:
        await _serialize_linking(session, stripe_id)
        row = await _locked(session, stripe_id)  # linked by a transaction we waited for
    if row is None:
        organization_id = await _organization_for(session, obj)
        if organization_id is None:
            return Outcome.UNMATCHED
        values = subscription_values(obj)
        row = await _link(session, organization_id, stripe_id, values["status"])
        created = True
        if row is None:  # pragma: no cover - the row was deleted between two statements
            return Outcome.UNMATCHED
        if on_linked is not None:
            await on_linked(session, stripe_id)
    if not is_newer(event, row.last_event_created, row.last_event_id):
        return Outcome.STALE
    after = (
        await session.execute(_UPDATE_BY_ID, {"row_id": row.id, **_update_params(obj, event)})
    ).one()
    before = {name: getattr(row, name) for name in SUBSCRIPTION_FIELDS}
    await _audit(
        session,
        event,
        subscription_id=row.id,
        organization_id=row.organization_id,
        before=before,
        after=after._asdict(),
        created=created,
    )
    return Outcome.PROCESSED


_WRITTEN: Final = (*STRIPE_SUBSCRIPTION_FIELDS, "last_event_created", "last_event_id")


def _build_update() -> tuple[Any, Any]:
    """The two subscription UPDATEs, built once: constructing SQLAlchemy expressions costs
    more CPU per event than executing a cached one (parameters are bound at execution)."""
    table = Subscription.__table__
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=table.c[name].type) for name in _WRITTEN
    }
    plan_code = (
        select(Plan.code)
        .join(Price, Price.plan_id == Plan.id)
        .where(Price.stripe_price_id == values["stripe_price_id"])
        .limit(1)
        .scalar_subquery()
    )
    values["plan_code"] = func.coalesce(plan_code, Subscription.plan_code)
    by_id = (
        update(Subscription)
        .where(Subscription.id == bindparam("row_id"))
        .values(values)
        .returning(*(getattr(Subscription, name) for name in SUBSCRIPTION_FIELDS))
    )
    # PostgreSQL fast path: lock, compare and write in one statement.
    old = (
        select(*_LOCKED_COLUMNS)
        .where(Subscription.stripe_subscription_id == bindparam("stripe_id"))
        .with_for_update()
        .cte("old")
    )
    newer = newer_sql(
        old.c.last_event_created,
        old.c.last_event_id,
        values["last_event_created"],
        values["last_event_id"],
    )
    guarded = (
        update(Subscription)
        .where(Subscription.id == old.c.id, newer)
        .values(values)
        .returning(
            old.c.id,
            old.c.organization_id,
            *(old.c[name].label(f"before_{name}") for name in SUBSCRIPTION_FIELDS),
            *(getattr(Subscription, name).label(f"after_{name}") for name in SUBSCRIPTION_FIELDS),
        )
    )
    return by_id, guarded


_UPDATE_BY_ID, _UPDATE_IF_NEWER = _build_update()


def _update_params(obj: Mapping[str, Any], event: EventRef) -> dict[str, Any]:
    values = subscription_values(obj)
    values["last_event_created"] = event.created
    values["last_event_id"] = event.id
    return {f"v_{name}": values[name] for name in _WRITTEN}


async def _update_if_newer(
    session: AsyncSession, stripe_id: str, obj: Mapping[str, Any], event: EventRef
) -> bool:
    """PostgreSQL fast path: lock, compare and write in one statement, when the row exists
    and the event is newer. False means "not applied" (no row, or not newer)."""
    result = await session.execute(
        _UPDATE_IF_NEWER, {"stripe_id": stripe_id, **_update_params(obj, event)}
    )
    row = result.one_or_none()
    if row is None:
        return False
    data = row._mapping
    before = {name: data[f"before_{name}"] for name in SUBSCRIPTION_FIELDS}
    after = {name: data[f"after_{name}"] for name in SUBSCRIPTION_FIELDS}
    await _audit(
        session,
        event,
        subscription_id=row.id,
        organization_id=row.organization_id,
        before=before,
        after=after,
        created=False,
    )
    return True


# PostgreSQL batch path (`apply_newest`): one statement locks the batch's subscriptions (in
# id order), compares each with its event and writes the newer ones; RETURNING gives the
# before and after values for the audit rows. The fields' SQL types, for the unnest arrays:
_SQL_TYPES: Final = {
    "status": "varchar",
    "stripe_price_id": "varchar",
    "amount_cents": "integer",
    "currency": "varchar",
    "interval": "varchar",
    "current_period_start": "timestamptz",
    "current_period_end": "timestamptz",
    "cancel_at_period_end": "boolean",
    "trial_end": "timestamptz",
    "last_event_created": "bigint",
    "last_event_id": "varchar",
}


def _build_batch_update() -> Any:
    def q(name: str) -> str:
        return f'"{name}"'

    arrays = ", ".join(f"CAST(:a_{n} AS {_SQL_TYPES[n]}[])" for n in _WRITTEN)
    columns = ", ".join(q(n) for n in _WRITTEN)
    kept = ", ".join(
        f"s.{q(n)}"
        for n in (
            "id",
            "organization_id",
            "stripe_subscription_id",
            "last_event_created",
            "last_event_id",
            *SUBSCRIPTION_FIELDS,
        )
    )
    sets = ", ".join(f"{q(n)} = v.{q(n)}" for n in _WRITTEN)
    newer = f"({newer_sql_text('old', 'v')})"
    returning = ", ".join(
        [
            "old.id",
            "old.organization_id",
            "old.stripe_subscription_id",
            *(f"old.{q(n)} AS {q('before_' + n)}" for n in SUBSCRIPTION_FIELDS),
            *(f"s.{q(n)} AS {q('after_' + n)}" for n in SUBSCRIPTION_FIELDS),
        ]
    )
    # Only module constants are interpolated (column names and types); values are bound.
    sql = (
        f"WITH v AS (SELECT * FROM unnest(CAST(:stripe_ids AS varchar[]), {arrays})"  # noqa: S608
        f" AS v(stripe_id, {columns})),"
        f" old AS (SELECT {kept} FROM subscriptions s"
        " WHERE s.stripe_subscription_id IN (SELECT stripe_id FROM v)"
        " ORDER BY s.id FOR UPDATE)"
        f" UPDATE subscriptions AS s SET {sets},"
        " plan_code = COALESCE((SELECT p.code FROM plans p JOIN prices pr"
        " ON pr.plan_id = p.id WHERE pr.stripe_price_id = v.stripe_price_id LIMIT 1),"
        " old.plan_code), updated_at = :now"
        " FROM old JOIN v ON v.stripe_id = old.stripe_subscription_id"
        f" WHERE s.id = old.id AND {newer} RETURNING {returning}"
    )
    return text(sql).bindparams(bindparam("now", type_=Subscription.__table__.c.updated_at.type))


_BATCH_UPDATE_IF_NEWER: Final = _build_batch_update()


async def apply_newest(
    session: AsyncSession, items: Sequence[tuple[Mapping[str, Any], EventRef]]
) -> set[str]:
    """Apply subscription events for distinct subscriptions in one statement (PostgreSQL).

    Returns the Stripe subscription ids it applied (the row exists and the event is newer
    than the last one applied), after writing their audit rows in one more round trip.
    The rest are left to `apply_subscription` (new row, stale event, unknown organization).
    """
    if not items:
        return set()
    params: dict[str, Any] = {"stripe_ids": [str(obj["id"]) for obj, _ in items]}
    rows = [_update_params(obj, event) for obj, event in items]
    for name in _WRITTEN:
        params[f"a_{name}"] = [row[f"v_{name}"] for row in rows]
    params["now"] = datetime.now(UTC)
    result = await session.execute(_BATCH_UPDATE_IF_NEWER, params)
    by_id = {str(obj["id"]): event for obj, event in items}
    applied: set[str] = set()
    audit_rows = []
    for row in result:
        data = row._mapping
        stripe_id = data["stripe_subscription_id"]
        applied.add(stripe_id)
        before = {name: data[f"before_{name}"] for name in SUBSCRIPTION_FIELDS}
        after = {name: data[f"after_{name}"] for name in SUBSCRIPTION_FIELDS}
        if before == after:
            continue
        audit_rows.append(
            audit.row(
                actor=STRIPE_ACTOR,
                entity="subscription",
                entity_id=data["id"],
                action="subscription.synced",
                before=before,
                after=after,
                organization_id=data["organization_id"],
                request_id=by_id[stripe_id].id,
            )
        )
    await audit.insert_many(session, audit_rows)
    return applied


async def apply_invoice(session: AsyncSession, obj: Mapping[str, Any], event: EventRef) -> Outcome:
    """Record an `invoice.payment_succeeded|failed` outcome on the invoice's subscription."""
    stripe_id = invoice_subscription_id(obj)
    if stripe_id is None:
        return Outcome.IGNORED  # a one-off invoice: no subscription to update
    row = await _locked(session, stripe_id)
    if row is None:
        # Held until commit: a link of this subscription waits, then applies this invoice.
        await _serialize_linking(session, stripe_id)
        row = await _locked(session, stripe_id)
    if row is None:
        return Outcome.UNMATCHED
    if not is_newer(event, row.last_payment_event_created, row.last_payment_event_id):
        return Outcome.STALE
    paid_at = _get(obj, "status_transitions", "paid_at")
    values = {
        "last_payment_status": "succeeded" if event.type.endswith("succeeded") else "failed",
        "last_payment_at": _timestamp(paid_at if paid_at else event.created),
    }
    await session.execute(
        update(Subscription)
        .where(Subscription.id == row.id)
        .values(**values, last_payment_event_created=event.created, last_payment_event_id=event.id)
    )
    before = {name: getattr(row, name) for name in _PAYMENT_FIELDS}
    await _audit(
        session,
        event,
        subscription_id=row.id,
        organization_id=row.organization_id,
        before=before,
        after=values,
        created=False,
    )
    return Outcome.PROCESSED


async def _audit(
    session: AsyncSession,
    event: EventRef,
    *,
    subscription_id: uuid.UUID,
    organization_id: uuid.UUID,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    created: bool,
) -> None:
    if not created and all(before.get(name) == value for name, value in after.items()):
        return
    await audit.insert(
        session,
        actor=STRIPE_ACTOR,
        entity="subscription",
        entity_id=subscription_id,
        action="subscription.linked" if created else "subscription.synced",
        before=None if created else before,
        after=after,
        organization_id=organization_id,
        request_id=event.id,  # the Stripe event that made the change
    )
