"""Server-side sessions: an opaque random id in a cookie, the session record in a Litestar `Store`.

Hand-written on a Litestar `Store` instead of Litestar's `ServerSideSessionConfig`: that
backend keeps the session id it finds in the incoming cookie (no way to issue a new id at
login, so it cannot prevent session fixation), enforces one sliding `max_age` (no absolute
expiry), and stores the record under the raw cookie value. Here:

- the id is 256 random bits, replaced by a new one at every login (`SessionStore.create`);
- the record is stored under SHA-256 of the id, so reading Redis keys does not yield cookies;
- idle expiry (default 30 min) and absolute expiry (default 12 h) are checked on every load,
  and the store TTL is kept at the smaller of the two so dead sessions also vanish from Redis.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import msgspec
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from cortiware.auth.principal import Principal, Role
from cortiware.kv import FallbackStore

__all__ = [
    "ABSOLUTE_TIMEOUT_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "SESSION_STORE_STATE_KEY",
    "SessionRecord",
    "SessionStore",
    "session_store_of",
]

IDLE_TIMEOUT_SECONDS: Final = 30 * 60
ABSOLUTE_TIMEOUT_SECONDS: Final = 12 * 60 * 60
# A session's last-seen time is rewritten at most this often, so reads stay reads.
_TOUCH_INTERVAL_SECONDS: Final = 60
SESSION_STORE_STATE_KEY: Final = "session_store"
"""`app.state` key of the `SessionStore`, created on first use."""


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


class SessionStore:
    """Create, load (enforcing idle and absolute expiry) and destroy sessions in a `Store`."""

    __slots__ = ("_clock", "absolute_timeout", "idle_timeout", "store")

    def __init__(
        self,
        store: Store,
        *,
        idle_timeout: int = IDLE_TIMEOUT_SECONDS,
        absolute_timeout: int = ABSOLUTE_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._clock = clock

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    async def _write(self, session_id: str, record: SessionRecord) -> None:
        remaining = record.created_at + self.absolute_timeout - record.last_seen
        ttl = max(1, int(min(self.idle_timeout, remaining)))
        await self.store.set(self._key(session_id), _encoder.encode(record), expires_in=ttl)

    async def create(self, principal: Principal) -> str:
        """Start a session for `principal` under a fresh random id, and return that id."""
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
        await self._write(session_id, record)
        return session_id

    async def load(self, session_id: str) -> Principal | None:
        """The principal of a live session, or None (unknown, idle too long, or too old)."""
        raw = await self.store.get(self._key(session_id))
        if raw is None:
            return None
        try:
            record = _decoder.decode(raw)
            principal = record.principal()
        except (msgspec.DecodeError, ValueError):
            await self.destroy(session_id)
            return None
        now = self._clock()
        if (
            now - record.last_seen >= self.idle_timeout
            or now - record.created_at >= self.absolute_timeout
        ):
            await self.destroy(session_id)
            return None
        if now - record.last_seen >= _TOUCH_INTERVAL_SECONDS:
            await self._write(session_id, msgspec.structs.replace(record, last_seen=now))
        return principal

    async def destroy(self, session_id: str) -> None:
        """End the session (no error when it does not exist)."""
        await self.store.delete(self._key(session_id))


def session_store_of(app: Any) -> SessionStore:
    """The app's `SessionStore`: on `app.state.kv` (Redis with memory fallback), else memory."""
    state = app.state
    store: SessionStore | None = state.get(SESSION_STORE_STATE_KEY)
    if store is None:
        kv = state.get("kv")
        if kv is not None:
            store = SessionStore(FallbackStore(kv, namespace="sessions"))
        else:
            store = SessionStore(MemoryStore())
        state[SESSION_STORE_STATE_KEY] = store
    return store
