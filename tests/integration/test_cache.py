"""The cache on real Redis: invalidation reaches every instance; one fetch for a cold key."""

from __future__ import annotations

import asyncio

from cortiware.cache import Cache
from cortiware.kv import KV, KVConfig


async def test_invalidation_on_one_instance_is_seen_by_another(
    redis_url: str, redis_prefix: str
) -> None:
    """Instance B reads fresh data right after instance A invalidates the group."""
    kv_a = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix))
    kv_b = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix))
    a, b = Cache(kv_a), Cache(kv_b)
    version = 1

    async def fetch() -> dict[str, int]:
        return {"version": version}

    assert await a.cached("plans:active", 600, fetch) == {"version": 1}
    assert await b.cached("plans:active", 600, fetch) == {"version": 1}
    version = 2
    await a.invalidate("plans")
    assert await b.cached("plans:active", 600, fetch) == {"version": 2}
    await kv_a.aclose()
    await kv_b.aclose()


async def test_a_cold_key_under_load_on_two_instances_costs_one_fetch(
    redis_url: str, redis_prefix: str
) -> None:
    """200 concurrent reads through two instances of a cold key run fetch once."""
    # Generous timeouts: this is about single flight, not about a slow Redis (a command over
    # the 0.25 s default on a loaded CI machine falls back to memory, by design; the
    # failover tests cover that path).
    config = KVConfig(key_prefix=redis_prefix, connect_timeout=2.0, command_timeout=2.0)
    kvs = [KV.from_url(redis_url, config) for _ in range(2)]
    caches = [Cache(kv) for kv in kvs]
    calls = 0

    async def fetch() -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return ["basic", "pro"]

    results = await asyncio.gather(
        *(caches[i % 2].cached("monetization:config", 300, fetch) for i in range(200))
    )
    for kv in kvs:
        await kv.aclose()
    assert calls == 1
    assert all(r == ["basic", "pro"] for r in results)


async def test_the_process_tier_is_stale_at_most_local_for_seconds_elsewhere(
    redis_url: str, redis_prefix: str
) -> None:
    """With `local_for`, an invalidation shows at once on the instance that made it and on
    another instance once its copy is `local_for` old; until then that one reads no Redis."""
    kv_a = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix))
    kv_b = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix))
    a, b = Cache(kv_a), Cache(kv_b)
    version = 1
    fetches = 0

    async def fetch() -> dict[str, int]:
        nonlocal fetches
        fetches += 1
        return {"version": version}

    try:
        assert await a.encoded("plans:active", 600, fetch, local_for=0.5) == b'{"version":1}'
        assert await b.encoded("plans:active", 600, fetch, local_for=0.5) == b'{"version":1}'
        assert fetches == 1
        version = 2
        await a.invalidate("plans")
        assert await a.encoded("plans:active", 600, fetch, local_for=0.5) == b'{"version":2}'
        assert await b.encoded("plans:active", 600, fetch, local_for=0.5) == b'{"version":1}'
        await asyncio.sleep(0.6)
        assert await b.encoded("plans:active", 600, fetch, local_for=0.5) == b'{"version":2}'
        assert fetches == 2
    finally:
        await kv_a.aclose()
        await kv_b.aclose()
