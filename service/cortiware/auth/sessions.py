"""Server-side sessions: a random id in a cookie, the record in the database, cached in Redis.

Where a session lives (see docs/sessions.md for the measurements behind it):

- On PostgreSQL (staging, production) the record's durable copy is a row of
  `user_sessions` (`DatabaseRecords`), and Redis holds a copy for at most a minute
  (`SessionCache`). A Redis stall, outage or a slow reply under CPU saturation is a cache
  miss, answered from the database: nobody is logged out, and a session never lives in one
  process only (every instance reads the same table). A database outage with the record not
  in Redis is a 503 (`DatabaseUnavailable`), never a 401.
- On the embedded SQLite database (development, unit tests) the record is in a Litestar
  `Store`: Redis with the breaker's memory fallback (`FallbackStore`), or memory alone.

Hand-written on top of those instead of Litestar's `ServerSideSessionConfig`: that backend
keeps the session id it finds in the incoming cookie (no way to issue a new id at login, so
it cannot prevent session fixation), enforces one sliding `max_age` (no absolute expiry), and
stores the record under the raw cookie value. Here:

- the id is 256 random bits, replaced by a new one at every login (`SessionStore.create`);
- the record is stored under SHA-256 of the id, so reading Redis or the table does not yield
  cookies;
- idle expiry (default 30 min) and absolute expiry (default 12 h) are checked on every load;
  the last-seen time is rewritten at most once a minute, and that write also notices a
  session deleted meanwhile by another instance (the cache then stops serving it).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

import msgspec
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from redis.asyncio import Redis
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cortiware.app_state import SETTINGS, StateKey
from cortiware.auth.principal import Principal, Role
from cortiware.db.models import UserSession
from cortiware.db.outage import DatabaseUnavailable, database_outage, is_outage
from cortiware.db.session import DB_ENGINE
from cortiware.kv import KV, KV_STATE, FallbackStore

__all__ = [
    "ABSOLUTE_TIMEOUT_SECONDS",
    "CACHE_TTL_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "SESSION_STORE",
    "SESSION_STORE_STATE_KEY",
    "DatabaseRecords",
    "SessionCache",
    "SessionRecord",
    "SessionRecords",
    "SessionStore",
    "StoreRecords",
    "session_store_of",
]

IDLE_TIMEOUT_SECONDS: Final = 30 * 60
ABSOLUTE_TIMEOUT_SECONDS: Final = 12 * 60 * 60
# A session's last-seen time is rewritten at most this often, so reads stay reads.
_TOUCH_INTERVAL_SECONDS: Final = 60
CACHE_TTL_SECONDS: Final = 60
"""Longest a Redis copy lives: bounds how long a logout made while Redis was unreachable can
still be honoured by another instance's cache (the touch, at most a minute apart, also checks)."""
_PURGE_INTERVAL_SECONDS: Final = 300


class SessionRecord(msgspec.Struct, frozen=True):
    """What the store keeps per session: who, and when it started and was last used."""

    role: str
    username: str
    organization_id: str | None
    owner_id: str | None
    created_at: float
    last_seen: float

    def principal(self) -> Principal:
        """The caller this session authenticates."""
        return Principal(
            role=Role(self.role),
            username=self.username,
            organization_id=uuid.UUID(self.organization_id) if self.organization_id else None,
            owner_id=uuid.UUID(self.owner_id) if self.owner_id else None,
        )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SessionRecord)


class SessionRecords(Protocol):
    """The durable copy of the sessions, keyed by the hash of their id."""

    async def get(self, key: str) -> SessionRecord | None:
        """The record, or None when there is none (or it is unreadable)."""

    async def add(self, key: str, record: SessionRecord, expires_at: float) -> None:
        """Store a new record."""

    async def touch(self, key: str, last_seen: float, expires_at: float) -> bool:
        """Move the record's last use; False when the record no longer exists."""

    async def delete(self, key: str) -> None:
        """Remove the record (no error when it does not exist)."""


class StoreRecords:
    """Records in a Litestar `Store` (JSON, the store's TTL set to the expiry)."""

    __slots__ = ("_clock", "store")

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def get(self, key: str) -> SessionRecord | None:
        """The record, or None (an undecodable value is deleted)."""
        raw = await self.store.get(key)
        if raw is None:
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError:
            await self.store.delete(key)
            return None

    async def add(self, key: str, record: SessionRecord, expires_at: float) -> None:
        """Store the record until `expires_at`."""
        ttl = max(1, int(expires_at - self._clock()))
        await self.store.set(key, _encoder.encode(record), expires_in=ttl)

    async def touch(self, key: str, last_seen: float, expires_at: float) -> bool:
        """Rewrite the record with its new last use; False when it is gone."""
        record = await self.get(key)
        if record is None:
            return False
        await self.add(key, msgspec.structs.replace(record, last_seen=last_seen), expires_at)
        return True

    async def delete(self, key: str) -> None:
        """Remove the record."""
        await self.store.delete(key)


_table: Table = cast(Table, UserSession.__table__)
_columns = (
    _table.c.role,
    _table.c.username,
    _table.c.organization_id,
    _table.c.owner_id,
    _table.c.created_at,
    _table.c.last_seen,
)


class DatabaseRecords:
    """Records in the `user_sessions` table; an unreachable database raises
    `DatabaseUnavailable` (503), never a driver error."""

    __slots__ = ("_clock", "_engine", "_next_purge")

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        # Autocommit: one statement each, so no BEGIN/ROLLBACK round trips around a lookup.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._clock = clock
        self._next_purge = 0.0

    async def _execute(self, statement: Any) -> Any:
        try:
            async with self._engine.connect() as conn:
                return await conn.execute(statement)
        except Exception as exc:
            if is_outage(exc):
                database_outage.failed(exc)
                raise DatabaseUnavailable from exc
            raise

    async def get(self, key: str) -> SessionRecord | None:
        """The record, or None."""
        result = await self._execute(select(*_columns).where(_table.c.key == key))
        row = result.first()
        if row is None:
            return None
        return SessionRecord(
            role=row.role,
            username=row.username,
            organization_id=str(row.organization_id) if row.organization_id else None,
            owner_id=str(row.owner_id) if row.owner_id else None,
            created_at=row.created_at,
            last_seen=row.last_seen,
        )

    async def add(self, key: str, record: SessionRecord, expires_at: float) -> None:
        """Insert the row; every few minutes also delete rows already expired."""
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL_SECONDS
            await self._execute(delete(_table).where(_table.c.expires_at < now))
        await self._execute(
            insert(_table).values(
                key=key,
                role=record.role,
                username=record.username,
                organization_id=uuid.UUID(record.organization_id)
                if record.organization_id
                else None,
                owner_id=uuid.UUID(record.owner_id) if record.owner_id else None,
                created_at=record.created_at,
                last_seen=record.last_seen,
                expires_at=expires_at,
            )
        )

    async def touch(self, key: str, last_seen: float, expires_at: float) -> bool:
        """Update the last use; False when the row is gone (logged out elsewhere)."""
        result = await self._execute(
            update(_table)
            .where(_table.c.key == key)
            .values(last_seen=last_seen, expires_at=expires_at)
        )
        return bool(result.rowcount)

    async def delete(self, key: str) -> None:
        """Delete the row."""
        await self._execute(delete(_table).where(_table.c.key == key))


class SessionCache:
    """Copies of records in Redis, for at most `CACHE_TTL_SECONDS`; never an error.

    A read that cannot reach Redis (breaker open, timeout, refused) is a miss. A delete that
    cannot reach Redis is remembered by this process (whose reads then skip the key) and
    retried with the next call that reaches Redis.
    """

    __slots__ = ("_kv", "_revoked")

    def __init__(self, kv: KV) -> None:
        self._kv = kv
        self._revoked: dict[str, float] = {}
        """Keys whose Redis delete failed -> monotonic time after which the copy expired."""

    def _redis_key(self, key: str) -> str:
        return self._kv.key("session", key)

    async def _flush(self, redis: Redis) -> None:
        now = time.monotonic()
        for key, until in list(self._revoked.items()):
            if until > now:
                await redis.delete(self._redis_key(key))
            self._revoked.pop(key, None)

    async def get(self, key: str) -> SessionRecord | None:
        """The cached record, or None (missing, unreadable, revoked here, Redis away)."""
        revoked = key in self._revoked

        async def on_redis(redis: Redis) -> bytes | None:
            if self._revoked:
                await self._flush(redis)
            if revoked:
                return None
            raw = await redis.get(self._redis_key(key))
            return raw.encode() if isinstance(raw, str) else raw

        raw = await self._kv.run(on_redis, _none)
        if raw is None:
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError:
            return None

    async def set(self, key: str, record: SessionRecord, expires_at: float) -> None:
        """Cache the record until `expires_at`, at most `CACHE_TTL_SECONDS`."""
        if key in self._revoked:
            return
        ttl = int(min(CACHE_TTL_SECONDS, expires_at - time.time()))
        if ttl < 1:
            return
        value = _encoder.encode(record)

        async def on_redis(redis: Redis) -> None:
            await redis.set(self._redis_key(key), value, ex=ttl)

        await self._kv.run(on_redis, _none)

    async def delete(self, key: str) -> None:
        """Drop the cached copy, now or as soon as Redis answers again."""

        async def on_redis(redis: Redis) -> None:
            self._revoked.pop(key, None)
            if self._revoked:
                await self._flush(redis)
            await redis.delete(self._redis_key(key))

        async def on_memory() -> None:
            self._revoked[key] = time.monotonic() + CACHE_TTL_SECONDS

        await self._kv.run(on_redis, on_memory)


async def _none() -> None:
    return None


class SessionStore:
    """Create, load (enforcing idle and absolute expiry) and destroy sessions."""

    __slots__ = ("_clock", "absolute_timeout", "cache", "idle_timeout", "records")

    def __init__(
        self,
        records: SessionRecords | Store,
        cache: SessionCache | None = None,
        *,
        idle_timeout: int = IDLE_TIMEOUT_SECONDS,
        absolute_timeout: int = ABSOLUTE_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records: SessionRecords = (
            StoreRecords(records, clock) if isinstance(records, Store) else records
        )
        self.cache = cache
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._clock = clock

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def _expires_at(self, record: SessionRecord) -> float:
        return min(record.last_seen + self.idle_timeout, record.created_at + self.absolute_timeout)

    async def create(self, principal: Principal) -> str:
        """Start a session for `principal` under a fresh random id, and return that id.

        Raises:
            DatabaseUnavailable: the database cannot be reached (the login is a 503).
        """
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        record = SessionRecord(
            role=principal.role.value,
            username=principal.username,
            organization_id=str(principal.organization_id) if principal.organization_id else None,
            owner_id=str(principal.owner_id) if principal.owner_id else None,
            created_at=now,
            last_seen=now,
        )
        key = self._key(session_id)
        expires_at = self._expires_at(record)
        await self.records.add(key, record, expires_at)
        if self.cache is not None:
            await self.cache.set(key, record, expires_at)
        return session_id

    async def load(self, session_id: str) -> Principal | None:
        """The principal of a live session, or None (unknown, idle too long, or too old).

        Raises:
            DatabaseUnavailable: the record is not cached and the database cannot be
                reached (a 503: the caller is not known to be logged out).
        """
        key = self._key(session_id)
        now = self._clock()
        record = await self.cache.get(key) if self.cache is not None else None
        refresh_cache = False
        if record is None or self._expires_at(record) <= now:
            # Not cached, or the copy looks expired: the durable record decides.
            record = await self.records.get(key)
            if record is None:
                return None
            if self._expires_at(record) <= now:
                await self.destroy(session_id)
                return None
            refresh_cache = True
        try:
            principal = record.principal()
        except ValueError:
            await self.destroy(session_id)
            return None
        if now - record.last_seen >= _TOUCH_INTERVAL_SECONDS:
            touched = msgspec.structs.replace(record, last_seen=now)
            try:
                alive = await self.records.touch(key, now, self._expires_at(touched))
            except DatabaseUnavailable:
                alive = True  # unknown: keep serving; the next load touches again
            else:
                record = touched
            if not alive:  # deleted meanwhile (logged out through another instance)
                if self.cache is not None:
                    await self.cache.delete(key)
                return None
            refresh_cache = True
        if refresh_cache and self.cache is not None:
            await self.cache.set(key, record, self._expires_at(record))
        return principal

    async def destroy(self, session_id: str) -> None:
        """End the session (no error when it does not exist).

        Raises:
            DatabaseUnavailable: the database cannot be reached; the session is not ended.
        """
        key = self._key(session_id)
        await self.records.delete(key)
        if self.cache is not None:
            await self.cache.delete(key)


SESSION_STORE: Final[StateKey[SessionStore]] = StateKey("session_store", SessionStore)
"""`app.state` entry of the `SessionStore`, created on first use."""
SESSION_STORE_STATE_KEY: Final = SESSION_STORE.name
"""The name of `SESSION_STORE`."""


def session_store_of(app: Any) -> SessionStore:
    """The app's `SessionStore`: in the database cached in Redis when the database is
    PostgreSQL; else on `KV_STATE` (Redis with memory fallback), else memory."""
    store = SESSION_STORE.find(app)
    if store is None:
        settings = SETTINGS.find(app)
        engine = DB_ENGINE.find(app)
        kv = KV_STATE.find(app)
        if engine is not None and settings is not None and not settings.is_embedded_database:
            cache = SessionCache(kv) if kv is not None and kv.redis is not None else None
            store = SessionStore(DatabaseRecords(engine), cache)
        elif kv is not None:
            store = SessionStore(FallbackStore(kv, namespace="sessions"))
        else:
            store = SessionStore(MemoryStore())
        SESSION_STORE.set(app, store)
    return store
