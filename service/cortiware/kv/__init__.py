"""Redis access with a circuit breaker and in-memory fallbacks.

`KV` owns the connection pool (connect and command timeouts, no client retries), the
`ScriptChannel` its Lua scripts run on (`kv.scripts`) and the `CircuitBreaker`;
`FallbackStore` is a Litestar `Store` built on it. The app creates one `KV` in its lifespan
and keeps it at `KV_STATE`; `redis_status(kv)` is what the health check reports.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Literal

from cortiware.app_state import StateKey
from cortiware.kv.breaker import BreakerState, CircuitBreaker
from cortiware.kv.client import FALLBACK, KV, UNAVAILABLE_ERRORS, KVConfig, RedisHealth
from cortiware.kv.store import FallbackStore

__all__ = [
    "FALLBACK",
    "KV",
    "KV_STATE",
    "REDIS_STATUS_TIMEOUT",
    "UNAVAILABLE_ERRORS",
    "BreakerState",
    "CircuitBreaker",
    "FallbackStore",
    "KVConfig",
    "RedisHealth",
    "RedisStatus",
    "redis_health",
    "redis_status",
]

KV_STATE: Final = StateKey("kv", KV)
"""`app.state` entry of the app's `KV`, set by its lifespan."""
REDIS_STATUS_TIMEOUT: Final = 0.5
"""Seconds `redis_status` waits for Redis before answering `down`."""
RedisStatus = Literal["ok", "degraded", "memory", "down"]


def redis_health(app: Any) -> RedisHealth:
    """`ok`, `degraded` (in-memory fallback serving) or `not_configured` for the app's `KV`."""
    kv = KV_STATE.find(app)
    return "not_configured" if kv is None else kv.health()


async def redis_status(kv: KV) -> RedisStatus:
    """Redis as the health check reports it: pinged within `REDIS_STATUS_TIMEOUT`, else `down`."""
    try:
        async with asyncio.timeout(REDIS_STATUS_TIMEOUT):
            state = await kv.check()
    except Exception:
        return "down"
    return "memory" if state == "not_configured" else state
