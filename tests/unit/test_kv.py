"""Unit tests of the KV circuit breaker, fallback routing and FallbackStore (no Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.datastructures import State
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cortiware import metrics
from cortiware.kv import (
    FALLBACK,
    KV,
    KV_STATE,
    BreakerState,
    CircuitBreaker,
    FallbackStore,
    KVConfig,
    redis_health,
)
from cortiware.kv.scripts import LuaScript, pack_command


class _Flaky:
    """A stand-in Redis client whose `ping` fails until `up` is set."""

    def __init__(self) -> None:
        self.up = False

    async def ping(self) -> bool:
        if not self.up:
            raise RedisConnectionError("down")
        return True

    async def aclose(self, close_connection_pool: bool = True) -> None:
        return None


def _kv(client: Any) -> KV:
    return KV(client, KVConfig(failure_threshold=2, probe_interval=0.01))


async def test_memory_only_kv_runs_the_memory_branch_and_reports_not_configured() -> None:
    """Without a Redis URL every call runs its in-memory branch and health is not_configured."""
    kv = KV.from_url(None)

    async def on_redis(_: Any) -> str:
        raise AssertionError("no redis")

    async def on_memory() -> str:
        return "memory"

    assert await kv.run(on_redis, on_memory) == "memory"
    assert kv.health() == "not_configured"
    assert not kv.using_redis


async def test_breaker_opens_after_threshold_and_skips_redis_while_open() -> None:
    """Two consecutive Redis errors open the breaker; then Redis is not called at all."""
    client = _Flaky()
    kv = _kv(client)
    calls = 0

    async def on_redis(_: Any) -> str:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("refused")

    async def on_memory() -> str:
        return "memory"

    before = metrics.snapshot().get("redis.fallback.activated", 0)
    assert await kv.run(on_redis, on_memory) == "memory"
    assert kv.breaker.state is BreakerState.CLOSED
    assert await kv.run(on_redis, on_memory) == "memory"
    assert kv.breaker.state is BreakerState.OPEN
    assert kv.health() == "degraded"
    assert await kv.run(on_redis, on_memory) == "memory"
    assert calls == 2
    assert metrics.snapshot()["redis.fallback.activated"] == before + 1
    await kv.aclose()


async def test_breaker_closes_on_its_own_when_the_probe_succeeds() -> None:
    """While open, the background probe closes the breaker once Redis answers again."""
    client = _Flaky()
    kv = _kv(client)
    for _ in range(2):
        kv.breaker.record_failure(RedisConnectionError("x"))
    assert kv.health() == "degraded"
    client.up = True
    for _ in range(100):
        if kv.breaker.is_closed:
            break
        await asyncio.sleep(0.01)
    assert kv.health() == "ok"
    await kv.aclose()


async def test_success_resets_the_consecutive_failure_count() -> None:
    """A success between failures keeps the breaker closed."""
    breaker = CircuitBreaker(_Flaky().ping, failure_threshold=2)
    breaker.record_failure(OSError())
    breaker.record_success()
    breaker.record_failure(OSError())
    assert breaker.is_closed


async def test_non_redis_errors_propagate_and_do_not_trip_the_breaker() -> None:
    """An application error inside the Redis branch is raised, not treated as an outage."""
    kv = _kv(_Flaky())

    async def on_redis(_: Any) -> str:
        raise ValueError("bug")

    async def on_memory() -> str:
        return "memory"

    with pytest.raises(ValueError, match="bug"):
        await kv.run(on_redis, on_memory)
    assert kv.breaker._failures == 0


async def test_fallback_store_round_trips_values_in_memory() -> None:
    """FallbackStore without Redis behaves as a Litestar store with expiry."""
    store = FallbackStore(KV.from_url(None), namespace="sessions")
    await store.set("a", "1", expires_in=60)
    assert await store.get("a") == b"1"
    assert await store.exists("a")
    assert 0 < (await store.expires_in("a") or 0) <= 60
    child = store.with_namespace("child")
    assert await child.get("a") is None
    await store.delete("a")
    assert await store.get("a") is None
    await store.set("b", b"2")
    await store.delete_all()
    assert await store.get("b") is None


def test_redis_health_reads_app_state() -> None:
    """redis_health reports not_configured without a KV and the KV's state otherwise."""

    class _App:
        state = State()

    assert redis_health(_App()) == "not_configured"
    KV_STATE.set(_App(), KV.from_url(None))
    assert redis_health(_App()) == "not_configured"


def test_metrics_registry_counts_and_snapshots() -> None:
    """counter(name).inc() is visible in snapshot() under that name."""
    metrics.counter("test.kv.counter").inc()
    metrics.counter("test.kv.counter").inc(2)
    assert metrics.snapshot()["test.kv.counter"] >= 3


async def test_a_timeout_runs_on_unsure_and_a_refused_connection_runs_on_memory() -> None:
    """A lost reply (timeout) may hide an applied write: `on_unsure` runs, not `on_memory`."""
    kv = _kv(_Flaky())

    async def timed_out(_: Any) -> str:
        raise RedisTimeoutError("Timeout reading from socket")

    async def refused(_: Any) -> str:
        raise RedisConnectionError("refused")

    async def on_memory() -> str:
        return "memory"

    async def on_unsure() -> str:
        return "unsure"

    assert await kv.run(timed_out, on_memory, on_unsure=on_unsure) == "unsure"
    kv.breaker.record_success()
    assert await kv.run(refused, on_memory, on_unsure=on_unsure) == "memory"
    kv.breaker.record_success()
    assert await kv.run(timed_out, on_memory) == "memory"
    await kv.aclose()


class _Scripts:
    """A stand-in script channel: answers `reply` or raises `error`, counting calls."""

    def __init__(self, reply: Any = None, error: BaseException | None = None) -> None:
        self.reply, self.error, self.calls = reply, error, 0

    async def evalsha(self, script: LuaScript, keys: Any, args: Any) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.reply

    def close(self) -> None:
        return None


_SCRIPT = LuaScript("return 1")


async def test_script_keeps_runs_rules_without_its_closures() -> None:
    """`KV.script`: the reply on Redis; FALLBACK on a Redis error (counted, opening the breaker
    at the threshold) and while open (Redis not called); FALLBACK without Redis at all."""
    assert await KV.from_url(None).script(_SCRIPT, ["k"], []) is FALLBACK
    scripts = _Scripts(reply=[1, 2])
    kv = KV(_Flaky(), KVConfig(failure_threshold=2, probe_interval=60), scripts)  # type: ignore[arg-type]
    assert await kv.script(_SCRIPT, ["k"], [1]) == [1, 2]
    scripts.error = RedisConnectionError("refused")
    assert await kv.script(_SCRIPT, ["k"], [1]) is FALLBACK
    assert kv.breaker.is_closed
    assert await kv.script(_SCRIPT, ["k"], [1]) is FALLBACK
    assert kv.breaker.state is BreakerState.OPEN
    assert await kv.script(_SCRIPT, ["k"], [1]) is FALLBACK
    assert scripts.calls == 3
    assert kv._slots._value == kv.config.max_connections  # every slot given back
    await kv.aclose()


async def test_script_waiting_for_a_slot_falls_back_if_the_breaker_opened_meanwhile() -> None:
    """A call queued for a slot while Redis failed does not go to Redis once it gets one."""
    scripts = _Scripts(reply="redis")
    kv = KV(_Flaky(), KVConfig(max_connections=1, probe_interval=60), scripts)  # type: ignore[arg-type]
    await kv._slots.acquire()  # every slot taken
    waiting = asyncio.ensure_future(kv.script(_SCRIPT, [], []))
    await asyncio.sleep(0)
    assert not waiting.done()
    for _ in range(kv.config.failure_threshold):
        kv.breaker.record_failure(RedisConnectionError("refused"))
    kv._slots.release()
    assert await waiting is FALLBACK
    assert scripts.calls == 0
    assert kv._slots._value == 1
    await kv.aclose()


async def test_script_success_resets_failures_and_other_errors_propagate() -> None:
    """A reply resets the failure count; a bug (not a Redis error) is raised, not a fallback."""
    scripts = _Scripts(error=RedisTimeoutError("slow"))
    kv = KV(_Flaky(), KVConfig(failure_threshold=2), scripts)  # type: ignore[arg-type]
    assert await kv.script(_SCRIPT, [], []) is FALLBACK
    scripts.error = None
    await kv.script(_SCRIPT, [], [])
    assert kv.breaker._failures == 0
    scripts.error = ValueError("bug")
    with pytest.raises(ValueError, match="bug"):
        await kv.script(_SCRIPT, [], [])
    assert kv.breaker._failures == 0
    assert kv._slots._value == kv.config.max_connections
    with pytest.raises(RuntimeError, match="no script channel"):
        await _kv(_Flaky()).script(_SCRIPT, [], [])
    await kv.aclose()


def test_script_commands_are_packed_as_redis_py_packs_them() -> None:
    """The script channel's RESP encoding is byte for byte redis-py's, for every arg type."""
    args = ("EVALSHA", "a" * 40, 2, "cw:idem:k", "cw:rl:b", b"\x00\xffblob", 12.5, -3, "é")
    ours = pack_command(*args)
    theirs = b"".join(Connection().pack_command(*args))
    assert ours == theirs
    script = LuaScript("return 1")
    assert script.evalsha(["k"], [1]) == pack_command(
        "EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 1, "k", 1
    )
    # The head kept per (keys, args) count is that count's, whatever was packed before.
    for keys, script_args in ((["k"], [1.5, 3]), (["a", "b"], []), ([], ["x", b"y", 7])):
        for _ in range(2):
            assert script.evalsha(keys, script_args) == b"".join(
                Connection().pack_command("EVALSHA", script.sha, len(keys), *keys, *script_args)
            )
