"""What `create_app` builds on Redis: the `KV` and its users, and the middleware using them.

Composition, so it sits next to `app.py`: `cortiware.kv` knows nothing of the rate limiter,
idempotency or the cache built on it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, Final

from cortiware import metrics
from cortiware.cache import CACHE, Cache
from cortiware.idempotency import IDEMPOTENCY_STORE, IdempotencyMiddleware, IdempotencyStore
from cortiware.idempotency.middleware import takes_claim
from cortiware.kv import KV, KV_STATE, KVConfig
from cortiware.ratelimit import RATE_LIMITER, GCRALimiter, RateLimitMiddleware, RateLimitPolicy
from cortiware.settings import Settings

__all__ = ["REDIS_FALLBACK_ACTIVE", "redis_lifespan", "redis_middleware"]

REDIS_FALLBACK_ACTIVE: Final = "redis.fallback.active"
"""Gauge: 1 while this worker serves limits, idempotency and caches from memory because
Redis is configured but unreachable (health `degraded`); the `redis-fallback` alarm reads it."""


def redis_middleware(settings: Settings) -> list[Any]:
    """Rate limiting then idempotency; list them after the middleware that sets the principal.

    A keyed request's limit is decided by the idempotency claim script (one round trip).
    """
    return [
        RateLimitMiddleware(
            RateLimitPolicy.from_settings(settings), settings.trusted_proxies, defer=takes_claim
        ),
        IdempotencyMiddleware(settings.trusted_proxies),
    ]


@asynccontextmanager
async def redis_lifespan(app: Any, *, settings: Settings) -> AsyncGenerator[KV, None]:
    """Set `KV_STATE`, `RATE_LIMITER`, `IDEMPOTENCY_STORE` and `CACHE`; close the pool on exit."""
    kv = KV.from_url(
        settings.redis_url,
        KVConfig(
            key_prefix=settings.redis_key_prefix,
            connect_timeout=settings.redis_timeout,
            command_timeout=settings.redis_timeout,
        ),
    )
    idempotency = IdempotencyStore(kv, secret=settings.session_secret)
    KV_STATE.set(app, kv)
    RATE_LIMITER.set(app, GCRALimiter(kv))
    IDEMPOTENCY_STORE.set(app, idempotency)
    CACHE.set(app, Cache(kv))

    def fallback_active() -> float:
        # 1 while Redis is configured but bypassed: health says `degraded` (redis-fallback).
        return 0.0 if kv.redis is None or kv.breaker.is_closed else 1.0

    metrics.gauge(REDIS_FALLBACK_ACTIVE, fallback_active)
    try:
        yield kv
    finally:
        metrics.forget_gauge(REDIS_FALLBACK_ACTIVE, fallback_active)
        await idempotency.aclose()
        await kv.aclose()
