"""Server-side session store: random ids, hashed keys, idle and absolute expiry."""

from __future__ import annotations

import uuid

from litestar.stores.memory import MemoryStore

from cortiware.auth.principal import Principal, Role
from cortiware.auth.sessions import SessionStore

OWNER = Principal(
    role=Role.OWNER,
    username="o@example.com",
    organization_id=uuid.uuid4(),
    owner_id=uuid.uuid4(),
)


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_create_and_load_round_trips_the_principal() -> None:
    """A created session loads back as the same principal, organization included."""
    store = SessionStore(MemoryStore())
    session_id = await store.create(OWNER)
    assert await store.load(session_id) == OWNER


async def test_ids_are_random_and_stored_hashed() -> None:
    """Each session gets a fresh high-entropy id, and the store key is not the id itself."""
    memory = MemoryStore()
    store = SessionStore(memory)
    first, second = await store.create(OWNER), await store.create(OWNER)
    assert first != second
    assert len(first) >= 43
    assert not await memory.exists(first)


async def test_unknown_id_loads_nothing() -> None:
    """An id that was never issued is not a session."""
    assert await SessionStore(MemoryStore()).load("forged-session-id") is None


async def test_idle_expiry() -> None:
    """A session unused for the idle timeout is gone, even before the store TTL fires."""
    clock = Clock()
    store = SessionStore(MemoryStore(), idle_timeout=1800, clock=clock)
    session_id = await store.create(OWNER)
    clock.now += 1799
    assert await store.load(session_id) == OWNER
    clock.now += 1800
    assert await store.load(session_id) is None


async def test_activity_extends_the_idle_window() -> None:
    """Using the session resets the idle clock."""
    clock = Clock()
    store = SessionStore(MemoryStore(), idle_timeout=1800, clock=clock)
    session_id = await store.create(OWNER)
    for _ in range(4):
        clock.now += 1000
        assert await store.load(session_id) == OWNER


async def test_absolute_expiry_despite_activity() -> None:
    """A session ends at the absolute timeout however active it is."""
    clock = Clock()
    store = SessionStore(MemoryStore(), idle_timeout=1800, absolute_timeout=7200, clock=clock)
    session_id = await store.create(OWNER)
    for _ in range(7):
        clock.now += 1000
        assert await store.load(session_id) == OWNER
    clock.now += 1000
    assert await store.load(session_id) is None


async def test_destroy_ends_the_session() -> None:
    """A destroyed session no longer loads."""
    store = SessionStore(MemoryStore())
    session_id = await store.create(OWNER)
    await store.destroy(session_id)
    assert await store.load(session_id) is None


async def test_corrupt_record_is_dropped() -> None:
    """A record that does not decode is treated as no session and deleted."""
    memory = MemoryStore()
    store = SessionStore(memory)
    session_id = await store.create(OWNER)
    await memory.set(SessionStore._key(session_id), b"not json")
    assert await store.load(session_id) is None
    assert not await memory.exists(SessionStore._key(session_id))
