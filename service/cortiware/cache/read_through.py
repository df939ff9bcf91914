"""Route handlers' use of the cache: read through it, invalidate after the commit.

Invalidation happens after the transaction commits: invalidating earlier would let a
concurrent reader cache the pre-commit state under the new generation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.cache import CACHE_STATE_KEY, Cache

__all__ = ["commit_and_invalidate", "read_through"]

T = TypeVar("T")


def _cache(state: State) -> Cache | None:
    cache = state.get(CACHE_STATE_KEY)
    return cache if isinstance(cache, Cache) else None


async def read_through(
    state: State, key: str, ttl: float, fetch: Callable[[], Awaitable[T]], type_: Any
) -> T:
    """`fetch()` through the app's cache (directly when the app has none)."""
    cache = _cache(state)
    if cache is None:
        return await fetch()
    result: T = await cache.cached(key, ttl, fetch, type_=type_)
    return result


async def commit_and_invalidate(session: AsyncSession, state: State, *groups: str) -> None:
    """Commit the request's transaction, then drop the cached `groups` everywhere."""
    await session.commit()
    cache = _cache(state)
    if cache is not None:
        await cache.invalidate(*groups)
