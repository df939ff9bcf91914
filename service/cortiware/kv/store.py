"""`FallbackStore`: a Litestar `Store` on Redis that falls back to memory with the breaker.

Use it wherever Litestar takes a store (server-side sessions, response cache)::

    stores={"sessions": FallbackStore(kv, namespace="sessions")}

Reads and writes go to Litestar's `RedisStore` while `kv` is healthy and to a process-local
`MemoryStore` while the breaker is open. Values written during an outage stay in that one
process and are not copied to Redis afterwards (a session created then must log in again
once Redis is back; see docs/redis.md).
"""

from __future__ import annotations

from datetime import timedelta

from litestar.stores.base import NamespacedStore
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from cortiware.kv.client import KV

__all__ = ["FallbackStore"]


class FallbackStore(NamespacedStore):
    """A `RedisStore` + `MemoryStore` pair switched by the `KV` circuit breaker."""

    __slots__ = ("_kv", "_memory", "_redis_store")

    def __init__(self, kv: KV, namespace: str = "store", memory: MemoryStore | None = None) -> None:
        self._kv = kv
        self.namespace = namespace
        self._memory = memory or MemoryStore()
        self._redis_store = (
            RedisStore(kv.redis, namespace=kv.key(namespace)) if kv.redis is not None else None
        )

    def with_namespace(self, namespace: str) -> FallbackStore:
        """A store in the child namespace `<namespace>_<child>` with its own memory side."""
        return type(self)(self._kv, f"{self.namespace}_{namespace}")

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        """Store `value` under `key`, expiring after `expires_in` seconds when given."""

        async def on_redis(_: object) -> None:
            assert self._redis_store is not None
            await self._redis_store.set(key, value, expires_in)

        await self._kv.run(on_redis, lambda: self._memory.set(key, value, expires_in))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """The value under `key`, or None; renews its expiry by `renew_for` when given."""

        async def on_redis(_: object) -> bytes | None:
            assert self._redis_store is not None
            return await self._redis_store.get(key, renew_for)

        return await self._kv.run(on_redis, lambda: self._memory.get(key, renew_for))

    async def delete(self, key: str) -> None:
        """Delete `key` on the active side (and always in memory)."""
        await self._memory.delete(key)

        async def on_redis(_: object) -> None:
            assert self._redis_store is not None
            await self._redis_store.delete(key)

        async def on_memory() -> None:
            return None

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
            return await self._redis_store.exists(key)

        return await self._kv.run(on_redis, lambda: self._memory.exists(key))

    async def expires_in(self, key: str) -> int | None:
        """Seconds until `key` expires, or None when missing or without expiry."""

        async def on_redis(_: object) -> int | None:
            assert self._redis_store is not None
            return await self._redis_store.expires_in(key)

        return await self._kv.run(on_redis, lambda: self._memory.expires_in(key))
