"""Start-up and shutdown of everything that lives on Redis, for the app lifespan.

Not imported by `cortiware.kv` itself (it depends on the packages built on `kv`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, Literal

from cortiware.cache import CACHE_STATE_KEY, Cache
from cortiware.idempotency import IDEMPOTENCY_STATE_KEY, IdempotencyMiddleware, IdempotencyStore
from cortiware.idempotency.middleware import takes_claim
from cortiware.kv.client import KV, KVConfig
from cortiware.ratelimit import (
    RATE_LIMITER_STATE_KEY,
    GCRALimiter,
    RateLimitMiddleware,
    RateLimitPolicy,
)
from cortiware.settings import Settings

__all__ = ["redis_lifespan", "redis_middleware"]


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
    """Create `KV` and its users on `app.state`; close the pool on exit.

    Sets `kv`, `rate_limiter`, `idempotency`, `cache` and `redis_health` (the async probe
    `cortiware.health` calls).
    """
    kv = KV.from_url(
        settings.redis_url,
        KVConfig(
            key_prefix=settings.redis_key_prefix,
            connect_timeout=settings.redis_timeout,
            command_timeout=settings.redis_timeout,
        ),
    )

    async def redis_health() -> Literal["ok", "degraded", "memory"]:
        state = await kv.check()
        return "memory" if state == "not_configured" else state

    app.state.kv = kv
    app.state[RATE_LIMITER_STATE_KEY] = GCRALimiter(kv)
    idempotency = IdempotencyStore(kv, secret=settings.session_secret)
    app.state[IDEMPOTENCY_STATE_KEY] = idempotency
    app.state[CACHE_STATE_KEY] = Cache(kv)
    app.state.redis_health = redis_health
    try:
        yield kv
    finally:
        await idempotency.aclose()
        await kv.aclose()
