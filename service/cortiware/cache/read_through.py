"""Domain services' use of the cache: read through it, invalidate after the commit.

Invalidation waits for the transaction to commit (`cortiware.db.session.after_commit`):
invalidating earlier would let a concurrent reader cache the pre-commit state under the new
generation. This module never commits: whoever owns the transaction does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.cache import CACHE, Cache
from cortiware.db.session import after_commit
from cortiware.kv import KV, KVConfig
from cortiware.settings import Settings

__all__ = ["cache_of", "command_cache", "invalidate_after_commit", "read_through"]

T = TypeVar("T")


def cache_of(state: State) -> Cache | None:
    """The app's cache, or None for an app built without one."""
    return CACHE.find(state)


async def read_through(
    cache: Cache | None, key: str, ttl: float, fetch: Callable[[], Awaitable[T]], type_: Any
) -> T:
    """`fetch()` through `cache` (directly when there is none)."""
    if cache is None:
        return await fetch()
    result: T = await cache.cached(key, ttl, fetch, type_=type_)
    return result


def invalidate_after_commit(session: AsyncSession, cache: Cache | None, *groups: str) -> None:
    """Drop the cached `groups` everywhere once the transaction of `session` commits."""
    if cache is None or not groups:
        return

    async def invalidate() -> None:
        await cache.invalidate(*groups)

    after_commit(session, invalidate)


@asynccontextmanager
async def command_cache(settings: Settings) -> AsyncIterator[Cache | None]:
    """The instances' shared cache, for one CLI command (None without `REDIS_URL`: each
    instance then caches in its own memory, which a command cannot reach)."""
    if settings.redis_url is None:
        yield None
        return
    kv = KV.from_url(
        settings.redis_url,
        KVConfig(
            key_prefix=settings.redis_key_prefix,
            connect_timeout=settings.redis_timeout,
            command_timeout=settings.redis_timeout,
        ),
    )
    try:
        yield Cache(kv)
    finally:
        await kv.aclose()
