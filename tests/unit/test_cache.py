"""Unit tests of the cache layer on its in-memory side (no Redis)."""

from __future__ import annotations

import asyncio

import pytest

from cortiware import metrics
from cortiware.cache import Cache, group_of
from cortiware.kv import KV


def test_group_is_the_part_before_the_first_colon() -> None:
    """`plans:active` belongs to group `plans`."""
    assert group_of("plans:active") == "plans"
    assert group_of("monetization") == "monetization"


async def test_hit_after_miss_and_counters() -> None:
    """The second read is a hit and does not call fetch; hits and misses are counted."""
    cache = Cache(KV.from_url(None))
    calls = 0

    async def fetch() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"v": calls}

    before = metrics.snapshot()
    assert await cache.cached("plans:active", 60, fetch) == {"v": 1}
    assert await cache.cached("plans:active", 60, fetch) == {"v": 1}
    after = metrics.snapshot()
    assert calls == 1
    assert after["cache.miss"] - before.get("cache.miss", 0) == 1
    assert after["cache.hit"] - before.get("cache.hit", 0) == 1


async def test_invalidate_drops_every_key_of_the_group() -> None:
    """invalidate(group) makes the next read of any key in the group fetch again."""
    cache = Cache(KV.from_url(None))
    values = iter(range(100))

    async def fetch() -> int:
        return next(values)

    assert await cache.cached("organizations:1", 60, fetch) == 0
    assert await cache.cached("plans:active", 60, fetch) == 1
    await cache.invalidate("organizations")
    assert await cache.cached("organizations:1", 60, fetch) == 2
    assert await cache.cached("plans:active", 60, fetch) == 1


async def test_concurrent_misses_share_one_fetch() -> None:
    """Fifty concurrent reads of a cold key run fetch once."""
    cache = Cache(KV.from_url(None))
    calls = 0

    async def fetch() -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return [1, 2]

    results = await asyncio.gather(*(cache.cached("plans:all", 60, fetch) for _ in range(50)))
    assert calls == 1
    assert all(r == [1, 2] for r in results)


async def test_fetch_errors_propagate_uncached() -> None:
    """An exception from fetch reaches the caller and the next read tries again."""
    cache = Cache(KV.from_url(None))

    async def broken() -> int:
        raise OSError("database down")

    async def works() -> int:
        return 7

    with pytest.raises(OSError, match="database down"):
        await cache.cached("monetization:config", 60, broken)
    assert await cache.cached("monetization:config", 60, works) == 7
