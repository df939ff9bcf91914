"""The "newer event wins" rule: its Python and SQL forms agree, and every path that applies
subscription events ends on the newest event whatever order the events arrive in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, String, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cortiware.db.engine import create_engine
from cortiware.webhooks.subscription_sync import (
    EventRef,
    apply_newest,
    apply_subscription,
    is_newer,
    newer_sql,
    newer_sql_text,
)
from tests.support.stripe_fake import create_organization, subscription_object, subscription_row

# Mixed case and punctuation: code point order differs from a linguistic collation's.
EVENT_IDS = st.text(alphabet="aAbB_1z", min_size=1, max_size=4).map(lambda s: f"evt_{s}")
CREATED = st.integers(min_value=1_700_000_000, max_value=1_700_000_003)
STATUSES = st.sampled_from(["active", "past_due", "canceled", "unpaid", "trialing"])
# A collation under which "evt_a" < "evt_B" (Python: the reverse), as on a database created
# with en_US.UTF-8: the SQL forms must not depend on the database's collation.
LINGUISTIC = "en-US-x-icu"


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the whole property test (hypothesis calls the body many times)."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture
def engine(runner: asyncio.Runner, database_url: str) -> Iterator[AsyncEngine]:
    """An engine on the run's database, made and disposed on `runner`'s loop."""
    made = runner.run(_make_engine(database_url))
    yield made
    runner.run(made.dispose())


async def _make_engine(url: str) -> AsyncEngine:
    return create_engine(url, pool_size=2)


def test_python_and_sql_forms_agree(runner: asyncio.Runner, engine: AsyncEngine) -> None:
    """`is_newer`, `newer_sql` and `newer_sql_text` give one answer for any (last, event),
    with the ids under a linguistic collation."""
    statement = text(
        f"SELECT {newer_sql_text('old', 'v')} FROM"  # noqa: S608 - the module's own SQL
        f' (SELECT CAST(:lc AS bigint), CAST(:lid AS varchar) COLLATE "{LINGUISTIC}")'
        " AS old(last_event_created, last_event_id),"
        f' (SELECT CAST(:c AS bigint), CAST(:eid AS varchar) COLLATE "{LINGUISTIC}")'
        " AS v(last_event_created, last_event_id)"
    )

    async def sql_answers(
        last_created: int | None, last_id: str | None, created: int, event_id: str
    ) -> tuple[bool, bool]:
        async with AsyncSession(engine) as session:
            collated = literal(last_id, String).collate(LINGUISTIC)
            expression = newer_sql(
                literal(last_created, BigInteger),
                collated,
                literal(created, BigInteger),
                literal(event_id, String).collate(LINGUISTIC),
            )
            built = await session.scalar(select(expression))
            params = {"lc": last_created, "lid": last_id, "c": created, "eid": event_id}
            written = await session.scalar(statement, params)
        return bool(built), bool(written)

    @settings(max_examples=150, deadline=None)
    @given(
        last=st.one_of(st.none(), st.tuples(CREATED, st.one_of(st.none(), EVENT_IDS))),
        created=CREATED,
        event_id=EVENT_IDS,
    )
    def agree(last: tuple[int, str | None] | None, created: int, event_id: str) -> None:
        last_created, last_id = last if last is not None else (None, None)
        python = is_newer(EventRef(event_id, "customer.subscription.updated", created),
                          last_created, last_id)  # fmt: skip
        built, written = runner.run(sql_answers(last_created, last_id, created, event_id))
        assert built == python
        assert written == python

    agree()


def _event(sub: str, customer: str, event_id: str, created: int, status: str) -> Any:
    obj = subscription_object(sub, customer=customer, status=status)
    return obj, EventRef(event_id, "customer.subscription.updated", created)


async def _final_state(
    sessions: async_sessionmaker[AsyncSession], events: list[tuple[str, int, str]]
) -> list[tuple[int, str, str]]:
    """Apply `events` in the given order through each path; each path's final row."""
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    await create_organization(sessions, customer=customer)
    single, batch = (f"sub_{uuid.uuid4().hex[:10]}{p}" for p in "sb")
    for event_id, created, status in events:
        async with sessions() as session, session.begin():
            obj, ref = _event(single, customer, event_id, created, status)
            await apply_subscription(session, obj, ref)
    for index, (event_id, created, status) in enumerate(events):
        async with sessions() as session, session.begin():
            obj, ref = _event(batch, customer, event_id, created, status)
            if index == 0:  # the batch path updates existing rows only
                await apply_subscription(session, obj, ref)
            elif not await apply_newest(session, [(obj, ref)]):
                await apply_subscription(session, obj, ref)  # what the ingest does then
    rows = [await subscription_row(sessions, sub) for sub in (single, batch)]
    return [(r.last_event_created, r.last_event_id, r.status) for r in rows]


def test_every_path_ends_on_the_newest_event(runner: asyncio.Runner, engine: AsyncEngine) -> None:
    """Single-event and batch paths, fed random events in random order, both end with the
    (created, id)-greatest event's state, as `is_newer` orders them."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        events=st.lists(
            st.tuples(EVENT_IDS, CREATED, STATUSES), min_size=1, max_size=6,
            unique_by=lambda e: e[0],
        ),
        data=st.data(),
    )  # fmt: skip
    def newest_wins(events: list[tuple[str, int, str]], data: st.DataObject) -> None:
        order = data.draw(st.permutations(events))
        newest = max(events, key=lambda e: (e[1], e[0]))
        expected = (newest[1], newest[0], newest[2])
        assert runner.run(_final_state(sessions, list(order))) == [expected, expected]

    newest_wins()
