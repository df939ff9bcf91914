"""Rate-limit decisions per second on one core: Cortiware GCRA vs `limits` vs Litestar.

Every contender runs in this process (pinned to one CPU) against the same private
redis-server (pinned to another), one after the other, with the same concurrency, keys and
duration. Round trips per decision are counted with `MONITOR` (commands sent by the client;
commands a Lua script runs inside Redis are marked `lua` and not round trips), and the
`INFO commandstats` deltas are reported alongside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aredis
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.stores.redis import RedisStore

from benchmarks._redis import command_calls, reset_stats
from cortiware.kv import KV, KVConfig
from cortiware.ratelimit import GCRALimiter

Decide = Callable[[str], Awaitable[bool]]

LIMIT = 1_000_000  # per minute: the benchmark measures decisions, nearly all admitted
KEYS = 1_000


@dataclass
class Contender:
    """A named decision function and its teardown."""

    name: str
    decide: Decide
    close: Callable[[], Awaitable[None]]


@dataclass
class Result:
    """Throughput and round trips of one contender."""

    name: str
    decisions: int
    seconds: float
    round_trips: float
    commands: dict[str, float]

    @property
    def per_second(self) -> float:
        """Decisions per second."""
        return self.decisions / self.seconds


async def cortiware_gcra(url: str) -> Contender:
    """This service's limiter: one EVALSHA of the GCRA script per decision (`ScriptChannel`)."""
    kv = KV.from_url(url, KVConfig(key_prefix="bench:cw:"))
    limiter = GCRALimiter(kv)

    async def decide(key: str) -> bool:
        return (await limiter.hit(key, LIMIT, 60)).allowed

    return Contender("cortiware GCRA (script channel, EVALSHA)", decide, kv.aclose)


async def limits_strategy(url: str, strategy: str, implementation: str = "coredis") -> Contender:
    """`limits` with its async Redis storage: coredis (its default) or redis-py (the client
    this service uses, with the same hiredis parser)."""
    storage = RedisStorage(
        url.replace("redis://", "async+redis://"),
        key_prefix="bench-limits",
        implementation=implementation,  # type: ignore[arg-type]
    )
    cls = MovingWindowRateLimiter if strategy == "moving" else SlidingWindowCounterRateLimiter
    limiter = cls(storage)
    item = RateLimitItemPerMinute(LIMIT)

    async def decide(key: str) -> bool:
        return await limiter.hit(item, key)

    async def close() -> None:
        return None

    label = "moving window" if strategy == "moving" else "sliding window counter"
    client = "async redis" if implementation == "coredis" else "async redis, redis-py"
    return Contender(f"limits {label} ({client})", decide, close)


async def litestar_middleware(url: str) -> Contender:
    """Litestar's RateLimitMiddleware decision path (lock, GET, SET) on a RedisStore."""
    client = aredis.Redis.from_url(url)
    store = RedisStore(client, namespace="bench-litestar")

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    middleware = RateLimitMiddleware(app, RateLimitConfig(rate_limit=("minute", LIMIT)))

    async def decide(key: str) -> bool:
        # The body of RateLimitMiddleware.__call__ once the request is built.
        async with middleware._lock:
            history = await middleware.retrieve_cached_history(key, store)
            if len(history.history) >= middleware.max_requests:
                return False
            await middleware.set_cached_history(key=key, cache_object=history, store=store)
        return True

    return Contender("litestar RateLimitMiddleware + RedisStore", decide, client.aclose)


async def _drive(decide: Decide, concurrency: int, seconds: float) -> int:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop:
            await decide(f"client-{i % KEYS}")
            i += concurrency
            done += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done


async def _round_trips(url: str, decide: Decide, samples: int = 200) -> float:
    """Client-sent commands per decision, from MONITOR (script-internal ones excluded)."""
    client = aredis.Redis.from_url(url)
    sent = 0
    ready = asyncio.Event()

    async def watch() -> None:
        nonlocal sent
        async with client.monitor() as monitor:
            ready.set()
            async for command in monitor.listen():
                text = command.get("command", "")
                if "MONITOR_STOP" in text:
                    return
                if command.get("client_type") == "lua":
                    continue
                if not text.upper().startswith(("PING", "INFO", "ECHO")):
                    sent += 1

    task = asyncio.create_task(watch())
    await ready.wait()
    await asyncio.sleep(0.1)
    for i in range(samples):
        await decide(f"rt-{i % 10}")
    await asyncio.sleep(0.2)
    stopper = aredis.Redis.from_url(url)
    await stopper.echo("MONITOR_STOP")  # the sentinel ends the watcher
    await stopper.aclose()
    await asyncio.wait_for(task, 5)
    await client.aclose()
    return sent / samples


async def measure(
    url: str, make: Callable[[], Awaitable[Contender]], concurrency: int, seconds: float
) -> Result:
    """Warm up, count round trips, then run `seconds` of decisions at `concurrency`."""
    contender = await make()
    await _drive(contender.decide, concurrency, 0.5)  # warm-up: connections, script cache
    round_trips = await _round_trips(url, contender.decide)
    reset_stats(url)
    decisions = await _drive(contender.decide, concurrency, seconds)
    stats = command_calls(url)
    await contender.close()
    commands = {
        name: calls / decisions
        for name, calls in sorted(stats.items())
        if name not in ("info", "config|resetstat", "config") and calls / decisions >= 0.01
    }
    return Result(contender.name, decisions, seconds, round_trips, commands)


def contenders(url: str) -> list[Callable[[], Awaitable[Contender]]]:
    """Every contender, in the order they run."""
    return [
        lambda: cortiware_gcra(url),
        lambda: limits_strategy(url, "moving"),
        lambda: limits_strategy(url, "sliding"),
        lambda: limits_strategy(url, "moving", "redispy"),
        lambda: limits_strategy(url, "sliding", "redispy"),
        lambda: litestar_middleware(url),
    ]
