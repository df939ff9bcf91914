"""The breaker measures Redis, not the event loop: a process too busy to read Redis's replies
in time does not open it, a stalled or dead Redis does (real Redis, production timeout, on
uvloop as uvicorn runs it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import uvloop
from redis.asyncio import Redis

from cortiware import metrics
from cortiware.kv import KV, KVConfig
from cortiware.kv.scripts import LuaScript
from tests.support.servers import redis_server

PRODUCTION_TIMEOUT = 0.25
INCR = LuaScript("return redis.call('INCR', KEYS[1])")


def _kv(url: str, prefix: str) -> KV:
    return KV.from_url(
        url,
        KVConfig(
            key_prefix=prefix,
            connect_timeout=PRODUCTION_TIMEOUT,
            command_timeout=PRODUCTION_TIMEOUT,
        ),
    )


async def _calls_during_a_busy_loop(kv: KV, busy_seconds: float) -> list[str]:
    """Start script calls and pooled reads, then hog the loop as a CPU-bound request would;
    where each call was answered (`... on redis` or `memory`), scripts first."""

    async def on_memory() -> str:
        return "memory"

    async def script(_: Redis) -> str:
        await kv.evalsha(INCR, [kv.key("busy")], [])
        return "script on redis"

    async def read(redis: Redis) -> str:
        await redis.get(kv.key("busy"))
        return "read on redis"

    calls = [asyncio.ensure_future(kv.run(script if i % 2 else read, on_memory)) for i in range(20)]
    # Right after the calls' first steps wrote their commands, the loop is hogged (as a
    # CPU-bound request would): the replies arrive and wait in the sockets meanwhile.
    asyncio.get_running_loop().call_soon(time.sleep, busy_seconds)
    answers = list(await asyncio.gather(*calls))
    return answers[1::2] + answers[0::2]


def test_a_busy_event_loop_neither_fails_script_calls_nor_opens_the_breaker(
    redis_url: str, redis_prefix: str
) -> None:
    """Three times, the loop is blocked for 0.6 s (over twice the timeout) while replies
    wait in the sockets: every script call (limits, idempotency) is answered by Redis and
    the breaker stays closed. (A pooled read may still time out on its own and be answered
    from memory: for the cache and the session cache that is a miss, served from the
    database.)"""

    async def scenario() -> tuple[list[str], int]:
        kv = _kv(redis_url, redis_prefix)
        try:
            answered: list[str] = []
            await _calls_during_a_busy_loop(kv, 0)  # connections open
            opened_before = metrics.snapshot().get("redis.fallback.activated", 0)
            for _ in range(3):
                answered += await _calls_during_a_busy_loop(kv, 0.6)
                await asyncio.sleep(0.3)  # a confirmation probe, if any, has ended
            opened = metrics.snapshot().get("redis.fallback.activated", 0) - opened_before
            return answered, opened
        finally:
            await kv.aclose()

    answered, opened = uvloop.run(scenario())
    scripts = [answer for i, answer in enumerate(answered) if i % 20 < 10]
    assert set(scripts) == {"script on redis"}, scripts
    assert opened == 0, "the breaker never opened"


# Opening takes two timeouts by design: the calls' own, then the confirmation PING's. The
# rest is an allowance for a loaded 2-core CI machine (one run there took 1.23 s, with a
# debootstrap and the other pytest worker beside it).
OPENS_WITHIN = 2 * PRODUCTION_TIMEOUT + 1.0


def test_a_stalled_redis_still_opens_the_breaker_and_it_closes_after(tmp_path: Path) -> None:
    """Redis paused (CLIENT PAUSE) for 3 s: the breaker opens within two timeouts (plus an
    allowance for a loaded machine), the calls are answered from memory, and it closes
    again once Redis answers."""

    async def scenario() -> tuple[float, bool]:
        with redis_server(tmp_path) as server:
            kv = _kv(server.url, "cwtest:stall:")
            admin = Redis.from_url(server.url)
            try:
                await _calls_during_a_busy_loop(kv, 0)
                await admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
                started = time.monotonic()
                while kv.breaker.is_closed and time.monotonic() - started < 3:
                    await _calls_during_a_busy_loop(kv, 0)
                assert kv.breaker.opened_at is not None, "the breaker opened during the pause"
                # When the breaker itself switched, not when this loop next looked.
                opened_after = kv.breaker.opened_at - started
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    if kv.breaker.is_closed:
                        break
                    await asyncio.sleep(0.05)
                return opened_after, kv.breaker.is_closed
            finally:
                await admin.aclose()
                await kv.aclose()

    opened_after, closed_again = uvloop.run(scenario())
    assert opened_after < OPENS_WITHIN, opened_after
    assert closed_again


async def test_timeouts_while_redis_answers_a_thread_do_not_open_the_breaker(
    redis_url: str, redis_prefix: str
) -> None:
    """Calls timing out on the loop (as under CPU saturation) while Redis answers the
    confirmation PING made from a thread leave the breaker closed."""
    kv = _kv(redis_url, redis_prefix)
    try:
        averted = metrics.snapshot().get("redis.fallback.averted", 0)
        for _ in range(3):
            kv.breaker.record_failure(TimeoutError("late reply"))
        await asyncio.sleep(0.3)
        assert kv.breaker.is_closed
        assert metrics.snapshot().get("redis.fallback.averted", 0) == averted + 1
    finally:
        await kv.aclose()
