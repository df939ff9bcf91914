"""`FallbackStore`: a Litestar `Store` on Redis that falls back to memory with the breaker.

Use it wherever Litestar takes a store (server-side sessions, response cache)::

    stores={"sessions": FallbackStore(kv, namespace="sessions")}

Reads and writes go to Litestar's `RedisStore` while `kv` is healthy and to a process-local
`MemoryStore` while the breaker is open. Values written during an outage stay in that one
process and are not copied to Redis afterwards (a session created then must log in again
once Redis is back; see docs/redis.md).

A delete that cannot reach Redis is not forgotten: the key is remembered as revoked, never
read back from Redis by this process, and deleted there by the next call that reaches Redis.
Otherwise a logout during an outage would leave the session alive in Redis, usable again by
a stolen cookie once Redis returns.
"""

from __future__ import annotations

import time
from datetime import timedelta

from litestar.stores.base import NamespacedStore
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from cortiware.kv.client import KV

__all__ = ["FallbackStore"]


class FallbackStore(NamespacedStore):
    """A `RedisStore` + `MemoryStore` pair switched by the `KV` circuit breaker."""

    __slots__ = ("_kv", "_memory", "_redis_store", "_revoked", "revoked_ttl")

    def __init__(
        self,
        kv: KV,
        namespace: str = "store",
        memory: MemoryStore | None = None,
        *,
        revoked_ttl: float = 86_400.0,
    ) -> None:
        self._kv = kv
        self.namespace = namespace
        self._memory = memory or MemoryStore()
        self._revoked: dict[str, float] = {}
        """Keys deleted while Redis was unreachable -> monotonic time to forget them."""
        self.revoked_ttl = revoked_ttl
        """How long a revoked key is remembered (at least the longest value lifetime)."""
        self._redis_store = (
            RedisStore(kv.redis, namespace=kv.key(namespace)) if kv.redis is not None else None
        )

    def with_namespace(self, namespace: str) -> FallbackStore:
        """A store in the child namespace `<namespace>_<child>` with its own memory side."""
        return type(self)(self._kv, f"{self.namespace}_{namespace}")

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        """Store `value` under `key`, expiring after `expires_in` seconds when given; a key
        revoked during an outage is not written back (a request that loaded the session
        before the logout must not revive it)."""
        if self._is_revoked(key):
            return

        async def on_redis(_: object) -> None:
            assert self._redis_store is not None
            await self._flush_revoked()
            await self._redis_store.set(key, value, expires_in)

        await self._kv.run(on_redis, lambda: self._memory.set(key, value, expires_in))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """The value under `key`, or None; renews its expiry by `renew_for` when given."""

        async def on_redis(_: object) -> bytes | None:
            assert self._redis_store is not None
            await self._flush_revoked()
            return await self._redis_store.get(key, renew_for)

        if self._is_revoked(key):
            await self._kv.run(self._flush_on_redis, _nothing)
            return None

        return await self._kv.run(on_redis, lambda: self._memory.get(key, renew_for))

    async def delete(self, key: str) -> None:
        """Delete `key` in memory and in Redis; when Redis cannot be reached, remember it as
        revoked and delete it there once Redis answers again."""
        await self._memory.delete(key)
        if self._redis_store is None:
            return

        async def on_redis(_: object) -> None:
            assert self._redis_store is not None
            await self._flush_revoked()
            await self._redis_store.delete(key)

        async def on_memory() -> None:
            self._revoked[key] = time.monotonic() + self.revoked_ttl

        await self._kv.run(on_redis, on_memory)

    async def delete_all(self) -> None:
        """Delete every key of this namespace, in memory and (when reachable) in Redis."""
        await self._memory.delete_all()

        async def on_redis(_: object) -> None:
            assert self._redis_store is not None
            await self._redis_store.delete_all()

        async def on_memory() -> None:
            return None

        await self._kv.run(on_redis, on_memory)

    async def exists(self, key: str) -> bool:
        """True when `key` holds an unexpired value."""

        async def on_redis(_: object) -> bool:
            assert self._redis_store is not None
            await self._flush_revoked()
            return await self._redis_store.exists(key)

        if self._is_revoked(key):
            await self._kv.run(self._flush_on_redis, _nothing)
            return False

        return await self._kv.run(on_redis, lambda: self._memory.exists(key))

    async def expires_in(self, key: str) -> int | None:
        """Seconds until `key` expires, or None when missing or without expiry."""

        async def on_redis(_: object) -> int | None:
            assert self._redis_store is not None
            return await self._redis_store.expires_in(key)

        return await self._kv.run(on_redis, lambda: self._memory.expires_in(key))

    def _is_revoked(self, key: str) -> bool:
        deadline = self._revoked.get(key)
        if deadline is None:
            return False
        if deadline < time.monotonic():
            del self._revoked[key]
            return False
        return True

    async def _flush_on_redis(self, _: object) -> None:
        await self._flush_revoked()

    async def _flush_revoked(self) -> None:
        """Delete in Redis the keys revoked while it was unreachable (raises like any call)."""
        if not self._revoked:
            return
        assert self._redis_store is not None
        for key in list(self._revoked):
            await self._redis_store.delete(key)
            self._revoked.pop(key, None)


async def _nothing() -> None:
    return None
