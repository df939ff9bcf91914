"""Redis access with a circuit breaker and in-memory fallbacks.

`KV` owns the connection pool (connect and command timeouts, no client retries), the
`ScriptChannel` its Lua scripts run on (`kv.scripts`) and the `CircuitBreaker`;
`FallbackStore` is a Litestar `Store` built on it. The app creates one `KV` in its lifespan
and keeps it at `app.state.kv`; `redis_health(app)` reports its state to the health check.
"""

from __future__ import annotations

from typing import Any

from cortiware.kv.breaker import BreakerState, CircuitBreaker
from cortiware.kv.client import KV, UNAVAILABLE_ERRORS, KVConfig, RedisHealth
from cortiware.kv.store import FallbackStore

__all__ = [
    "KV",
    "UNAVAILABLE_ERRORS",
    "BreakerState",
    "CircuitBreaker",
    "FallbackStore",
    "KVConfig",
    "RedisHealth",
    "redis_health",
]


def redis_health(app: Any) -> RedisHealth:
    """`ok`, `degraded` (in-memory fallback serving) or `not_configured` for `app.state.kv`."""
    kv: KV | None = getattr(app.state, "kv", None)
    return "not_configured" if kv is None else kv.health()
