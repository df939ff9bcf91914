"""`Cache.cached(key, ttl, fetch)`: a Redis read-through cache, exact across instances.

Keys are `<group>:<name>` (`plans:active`, `organizations:42`); `invalidate(group)` drops
every key of a group on every instance at once. Each group has a generation counter
(`cw:cache:g:<group>`); a value (`cw:cache:v:<key>`) is stored with the generation read
*before* its fetch, and is valid only while that generation is current. One `MGET` reads
both, so a hit is one round trip; an `INCR` invalidates, and a fetch racing an invalidation
stores a value that is already stale and never served.

Single flight: concurrent misses of one key in a process share one `fetch`; across
processes a short `SET NX` lock lets one fetch while the others poll for its result, so a
cold key under load costs one database query.

Process tier (`encoded(..., local_for=s)`, for public data read on every request such as the
plan list): the encoded value is also kept in this process for `local_for` seconds and served
from there without a Redis read. An invalidation made in this process drops it at once;
one made by another instance reaches it within `local_for` seconds (the bound on staleness
the caller chooses), when the next read asks Redis for the group's generation again.

While Redis is down the cache is process-local with TTLs capped at `memory_ttl_cap`
(another instance's invalidation cannot reach this one then); invalidations made meanwhile
are replayed on Redis when it answers again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import msgspec
from redis.asyncio import Redis

from cortiware import metrics
from cortiware.kv import KV, UNAVAILABLE_ERRORS

__all__ = ["Cache", "group_of"]

T = TypeVar("T")

LOCK_TTL: Final = 5.0
"""Seconds a cross-process fetch lock lives (a crashed fetcher frees it this late)."""
POLL_INTERVAL: Final = 0.02

_hit = metrics.counter("cache.hit")
_miss = metrics.counter("cache.miss")


class _Entry(msgspec.Struct, array_like=True):
    generation: int
    payload: bytes


class _FetchError(Exception):
    """Carries an exception of `fetch` past `KV.run`, which would take an OSError for Redis's."""


async def _fetch(fetch: Callable[[], Awaitable[Any]]) -> bytes:
    try:
        value = await fetch()
    except Exception as exc:
        raise _FetchError from exc
    return msgspec.json.encode(value)


def group_of(key: str) -> str:
    """The invalidation group of `key`: the part before the first `:`."""
    return key.split(":", 1)[0]


class Cache:
    """Read-through cache with group invalidation; the app's is `CACHE` in `app.state`."""

    __slots__ = (
        "_flights",
        "_generations",
        "_kv",
        "_local",
        "_memory",
        "_pending",
        "memory_ttl_cap",
    )

    def __init__(self, kv: KV, *, memory_ttl_cap: float = 5.0) -> None:
        self._kv = kv
        self.memory_ttl_cap = memory_ttl_cap
        self._flights: dict[str, asyncio.Future[bytes]] = {}
        self._memory: dict[str, tuple[float, int, bytes]] = {}
        self._generations: dict[str, int] = {}
        self._pending: set[str] = set()
        self._local: dict[str, tuple[float, int, bytes]] = {}
        """The process tier: key -> (monotonic expiry, this process's group generation, JSON)."""

    async def cached(
        self,
        key: str,
        ttl: float,
        fetch: Callable[[], Awaitable[T]],
        *,
        type_: Any = Any,
    ) -> T:
        """The value of `key`, from the cache or else from `fetch()` (kept `ttl` seconds).

        Values travel as JSON (msgspec), so a caller gets `msgspec.json.decode(..., type=type_)`
        of what `fetch` returned, also on a miss: pass `type_` (a dataclass, Struct, list[...])
        to get typed values back, else builtins. Exceptions from `fetch` propagate, uncached.
        """
        payload = await self._payload(key, ttl, fetch)
        result: T = msgspec.json.decode(payload, type=type_)
        return result

    async def encoded(
        self,
        key: str,
        ttl: float,
        fetch: Callable[[], Awaitable[Any]],
        *,
        local_for: float = 0.0,
    ) -> bytes:
        """Like `cached`, but the JSON bytes themselves (what a response sends as is).

        With `local_for` > 0 the bytes are also kept in this process that many seconds: see
        "Process tier" in the module docstring for what that costs in staleness.
        """
        if local_for <= 0:
            return await self._payload(key, ttl, fetch)
        generation = self._generations.get(group_of(key), 0)
        found = self._local.get(key)
        if found is not None and found[1] == generation and found[0] > time.monotonic():
            _hit.inc()
            return found[2]
        payload = await self._payload(key, ttl, fetch)
        if len(self._local) > 1_000:
            self._local.clear()  # bounded: meant for a few hot public keys
        # Stamped with the generation read before the fetch: an invalidation made here while
        # it ran leaves an entry that is already stale.
        self._local[key] = (time.monotonic() + local_for, generation, payload)
        return payload

    async def _payload(self, key: str, ttl: float, fetch: Callable[[], Awaitable[Any]]) -> bytes:
        flight = self._flights.get(key)
        if flight is not None:
            _hit.inc()
            return await asyncio.shield(flight)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            payload = await self._get_or_fetch(key, ttl, fetch)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, no "never retrieved"
            raise
        else:
            future.set_result(payload)
        finally:
            del self._flights[key]
        return payload

    async def invalidate(self, *groups: str) -> None:
        """Make every cached key of `groups` stale, on every instance."""
        for group in groups:
            self._generations[group] = self._generations.get(group, 0) + 1

        async def on_redis(redis: Redis) -> None:
            await self._flush_pending(redis)
            async with redis.pipeline(transaction=False) as pipe:
                for group in groups:
                    pipe.incr(self._kv.key("cache", "g", group))
                await pipe.execute()

        async def on_memory() -> None:
            self._pending.update(groups)

        await self._kv.run(on_redis, on_memory)

    async def _flush_pending(self, redis: Redis) -> None:
        if self._pending:
            pending = set(self._pending)
            for group in pending:
                await redis.incr(self._kv.key("cache", "g", group))
            self._pending -= pending

    async def _get_or_fetch(
        self, key: str, ttl: float, fetch: Callable[[], Awaitable[Any]]
    ) -> bytes:
        async def on_redis(redis: Redis) -> bytes:
            return await self._redis_get_or_fetch(redis, key, ttl, fetch)

        async def on_memory() -> bytes:
            return await self._memory_get_or_fetch(key, ttl, fetch)

        try:
            return await self._kv.run(on_redis, on_memory)
        except _FetchError as exc:
            cause = exc.__cause__
            assert cause is not None
            raise cause from None

    async def _read(self, redis: Redis, key: str) -> tuple[int, bytes | None]:
        raw_gen, raw_val = await redis.mget(
            self._kv.key("cache", "g", group_of(key)), self._kv.key("cache", "v", key)
        )
        generation = int(raw_gen or 0)
        if raw_val is not None:
            raw = raw_val if isinstance(raw_val, bytes) else raw_val.encode()
            entry = msgspec.msgpack.decode(raw, type=_Entry)
            if entry.generation == generation:
                return generation, entry.payload
        return generation, None

    async def _redis_get_or_fetch(
        self, redis: Redis, key: str, ttl: float, fetch: Callable[[], Awaitable[Any]]
    ) -> bytes:
        await self._flush_pending(redis)
        generation, payload = await self._read(redis, key)
        if payload is not None:
            _hit.inc()
            return payload
        lock = self._kv.key("cache", "lock", key)
        token = secrets.token_hex(8)
        acquired = bool(await redis.set(lock, token, nx=True, px=int(LOCK_TTL * 1000)))
        if not acquired:
            # Another process is fetching: wait for its value rather than query again.
            deadline = time.monotonic() + LOCK_TTL
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_INTERVAL)
                generation, payload = await self._read(redis, key)
                if payload is not None:
                    _hit.inc()
                    return payload
                if not await redis.exists(lock):
                    break
        # Read once more before fetching: the holder may have stored the value and released
        # the lock between our first read and the SET NX (or between the last poll and EXISTS).
        generation, payload = await self._read(redis, key)
        if payload is not None:
            if acquired:
                await redis.delete(lock)
            _hit.inc()
            return payload
        _miss.inc()
        payload = await _fetch(fetch)
        entry = msgspec.msgpack.encode(_Entry(generation, payload))
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.set(self._kv.key("cache", "v", key), entry, px=max(1, int(ttl * 1000)))
                pipe.delete(lock)
                await pipe.execute()
        except UNAVAILABLE_ERRORS:
            # The value is fetched and good: return it rather than let the memory path fetch
            # it again. The lock expires by itself; the next command informs the breaker.
            pass
        return payload

    async def _memory_get_or_fetch(
        self, key: str, ttl: float, fetch: Callable[[], Awaitable[Any]]
    ) -> bytes:
        now = time.monotonic()
        generation = self._generations.get(group_of(key), 0)
        found = self._memory.get(key)
        if found is not None and found[0] > now and found[1] == generation:
            _hit.inc()
            return found[2]
        _miss.inc()
        payload = await _fetch(fetch)
        if len(self._memory) > 10_000:
            self._memory.clear()  # bounded: the fallback is for outages, not a second tier
        self._memory[key] = (now + min(ttl, self.memory_ttl_cap), generation, payload)
        return payload
