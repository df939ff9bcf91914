"""The Redis connection pool and script channel behind a circuit breaker (`KV`).

Every Redis-backed component (idempotency store, cache, `FallbackStore`; the rate limiter
through `KV.script`, below) calls `KV.run(on_redis, on_memory)`: `on_redis` runs against
Redis while the breaker is closed (through redis-py's pool, or `KV.evalsha` for the
service's Lua scripts, which go through `ScriptChannel`); on a connection error, timeout or
other Redis error it records the failure and runs `on_memory` instead, so callers never see
a Redis exception. With no `REDIS_URL` (development) `KV` has no pool and every call runs
`on_memory`.

A timeout is different from a refused connection: the command may have run on Redis and
only its reply was lost. A caller whose write must not also happen in memory (an
idempotency claim) passes `on_unsure`, which then runs instead of `on_memory`.

`KV.script(script, keys, args)` is `run` for a bare `EVALSHA` with the same rules, returning
`FALLBACK` where `run` would call `on_memory`: the rate limiter takes every decision through
it (one call frame instead of `run`'s closures and nested coroutines).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from redis import Redis as SyncRedis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as SyncRetry

from cortiware.kv.breaker import BreakerState, CircuitBreaker
from cortiware.kv.scripts import LuaScript, ScriptChannel

__all__ = ["FALLBACK", "KV", "UNAVAILABLE_ERRORS", "UNSURE_ERRORS", "KVConfig", "RedisHealth"]

T = TypeVar("T")
RedisHealth = Literal["ok", "degraded", "not_configured"]

#: Errors meaning "Redis cannot answer now": trip the breaker and use the fallback.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
#: Of those, the ones after which the command may still have run on Redis (reply lost).
UNSURE_ERRORS: tuple[type[BaseException], ...] = (RedisTimeoutError, TimeoutError)


class _Fallback:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FALLBACK"


FALLBACK: Final = _Fallback()
"""What `KV.script` returns when Redis cannot decide now: the caller decides in memory."""


@dataclass(frozen=True, slots=True)
class KVConfig:
    """Connection pool and breaker tuning."""

    connect_timeout: float = 0.25
    """Seconds to open a TCP (and TLS) connection before giving up."""
    command_timeout: float = 0.25
    """Seconds to wait for any single command's reply."""
    max_connections: int = 64
    """Pool size per process; further callers queue for a connection (no timeout, no error)."""
    failure_threshold: int = 2
    """Consecutive failures that open the breaker."""
    probe_interval: float = 0.5
    """Seconds between pings while the breaker is open."""
    key_prefix: str = "cw:"
    """Prefix of every key this service writes (see docs/redis.md)."""


class KV:
    """Redis pool + circuit breaker; `app.state.kv`."""

    __slots__ = (
        "_confirm_client",
        "_confirm_thread",
        "_slots",
        "breaker",
        "config",
        "redis",
        "scripts",
    )

    def __init__(
        self,
        redis: Redis | None,
        config: KVConfig | None = None,
        scripts: ScriptChannel | None = None,
        confirm_client: SyncRedis | None = None,
    ) -> None:
        self.redis = redis
        self.config = config or KVConfig()
        # The connection the service's Lua scripts run on (see `cortiware.kv.scripts`).
        self.scripts = scripts
        # Queue for a pooled connection here: an exhausted pool is load, not an outage, and
        # must not open the breaker (which would split the limits into per-process ones).
        self._slots = asyncio.Semaphore(self.config.max_connections)
        # A blocking client, used from one thread of its own, for the breaker's confirmation
        # PING: its timeout is the kernel's, so a busy event loop cannot make it fail.
        self._confirm_client = confirm_client
        self._confirm_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="kv-confirm")
            if confirm_client is not None
            else None
        )
        self.breaker = CircuitBreaker(
            self._ping,
            failure_threshold=self.config.failure_threshold,
            probe_interval=self.config.probe_interval,
            confirm=self._confirm if confirm_client is not None else None,
        )

    @classmethod
    def from_url(cls, url: str | None, config: KVConfig | None = None) -> KV:
        """A `KV` on `url` (`redis://`, `rediss://`, `unix://`), or memory-only when None."""
        config = config or KVConfig()
        if url is None:
            return cls(None, config)
        pool = ConnectionPool.from_url(
            url,
            max_connections=config.max_connections,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.command_timeout,
            # No client-side retries: the breaker decides, and a retry is a per-request wait.
            retry=Retry(NoBackoff(), 0),
            # Skips CLIENT SETINFO on each new connection (fewer round trips on connect).
            driver_info=None,
        )
        scripts = ScriptChannel.for_pool(
            pool, connect_timeout=config.connect_timeout, command_timeout=config.command_timeout
        )
        confirm_client = SyncRedis.from_url(
            url,
            max_connections=1,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.command_timeout,
            retry=SyncRetry(NoBackoff(), 0),
            driver_info=None,
        )
        return cls(Redis(connection_pool=pool), config, scripts, confirm_client)

    @property
    def using_redis(self) -> bool:
        """True when Redis is configured and the breaker is closed."""
        return self.redis is not None and self.breaker.state is BreakerState.CLOSED

    def health(self) -> RedisHealth:
        """`ok` on Redis, `degraded` while the fallback serves, `not_configured` without URL."""
        if self.redis is None:
            return "not_configured"
        return "ok" if self.breaker.is_closed else "degraded"

    async def check(self) -> RedisHealth:
        """Like `health`, but pings Redis while the breaker is closed (for the health check)."""
        if self.redis is None:
            return "not_configured"
        if not self.breaker.is_closed:
            return "degraded"
        try:
            await self.redis.ping()
        except UNAVAILABLE_ERRORS as exc:
            self.breaker.record_failure(exc)
            return "degraded"
        return "ok"

    def key(self, *parts: str) -> str:
        """A namespaced key: the configured prefix joined with `parts` by `:`."""
        return self.config.key_prefix + ":".join(parts)

    async def run(
        self,
        on_redis: Callable[[Redis], Awaitable[T]],
        on_memory: Callable[[], Awaitable[T]],
        *,
        on_unsure: Callable[[], Awaitable[T]] | None = None,
    ) -> T:
        """Run `on_redis` while Redis is usable, else (or on its failure) `on_memory`.

        When `on_redis` timed out (`UNSURE_ERRORS`) and `on_unsure` is given, run that
        instead of `on_memory`: the command may have been applied on Redis.
        """
        redis = self.redis
        failure: BaseException | None = None
        if redis is not None and self.breaker.state is BreakerState.CLOSED:
            async with self._slots:
                if self.breaker.state is BreakerState.CLOSED:  # it may have opened meanwhile
                    try:
                        result = await on_redis(redis)
                    except UNAVAILABLE_ERRORS as exc:
                        self.breaker.record_failure(exc)
                        failure = exc
                    else:
                        self.breaker.record_success()
                        return result
        if on_unsure is not None and isinstance(failure, UNSURE_ERRORS):
            return await on_unsure()
        return await on_memory()

    async def script(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        """`script`'s reply under `run`'s rules, or `FALLBACK` for the caller to use memory.

        The same as `run(on_redis, on_memory)` with `on_redis` an `evalsha` (slot, breaker,
        failures recorded), without `run`'s two closures and four coroutine frames: the rate
        limiter decides every limited request through here.
        """
        if self.redis is None or self.breaker.state is not BreakerState.CLOSED:
            return FALLBACK
        scripts = self.scripts
        if scripts is None:
            raise RuntimeError("this KV has no script channel (build it with KV.from_url)")
        slots = self._slots
        await slots.acquire()
        try:
            if self.breaker.state is not BreakerState.CLOSED:  # it may have opened meanwhile
                return FALLBACK
            try:
                result = await scripts.evalsha(script, keys, args)
            except UNAVAILABLE_ERRORS as exc:
                self.breaker.record_failure(exc)
                return FALLBACK
            self.breaker.record_success()
            return result
        finally:
            slots.release()

    async def evalsha(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        """Run `script` on Redis; for `run`'s `on_redis` (its errors are `run`'s to handle)."""
        if self.scripts is None:
            raise RuntimeError("this KV has no script channel (build it with KV.from_url)")
        return await self.scripts.evalsha(script, keys, args)

    async def _ping(self) -> None:
        if self.redis is not None:
            await self.redis.ping()

    async def _confirm(self) -> None:
        """PING from the confirmation thread; raises when Redis does not answer in time."""
        assert self._confirm_client is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._confirm_thread, self._confirm_client.ping)

    async def aclose(self) -> None:
        """Stop the breaker probe and close the pool."""
        await self.breaker.aclose()
        if self._confirm_thread is not None:
            self._confirm_thread.shutdown(wait=False, cancel_futures=True)
        if self._confirm_client is not None:
            self._confirm_client.close()
        if self.scripts is not None:
            self.scripts.close()
        if self.redis is not None:
            await self.redis.aclose(close_connection_pool=True)
