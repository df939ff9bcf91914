"""CPU and wall time of one sequential `EVALSHA`: redis-py's asyncio client vs `ScriptChannel`.

Usage: `.venv/bin/python -m benchmarks.script_call [--batches 8] [--calls 1000]`.
Both clients are the ones `KV.from_url` builds (0.25 s connect and command timeouts, no
retries, hiredis parsing) and call the same GCRA script on the same keys of a
private redis-server (pinned to CPU 1; this process to CPU 0). Batches alternate between the
two, so both meet the same machine noise; reported: the median and the best batch, in µs per
call, of process CPU time (`time.process_time`, system calls included) and of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

from benchmarks._redis import private_redis
from cortiware.kv import KV
from cortiware.kv.scripts import LuaScript
from cortiware.ratelimit.gcra import GCRA_LUA

_Call = Callable[[], Awaitable[object]]


async def _batch(call: _Call, calls: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.process_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


async def _main(args: argparse.Namespace) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    with private_redis(cpu=1) as url:
        kv = KV.from_url(url)  # the pool and the channel exactly as the service builds them
        assert kv.redis is not None
        assert kv.scripts is not None
        redis, channel = kv.redis, kv.scripts
        script = LuaScript(GCRA_LUA)
        await redis.script_load(script.lua)
        args_ = ("60000.0", 1_000_000)
        contenders: dict[str, _Call] = {
            "redis-py 8 asyncio client (Redis.evalsha)": lambda: redis.evalsha(
                script.sha, 1, "bench:k", *args_
            ),
            "ScriptChannel.evalsha": lambda: channel.evalsha(script, ["bench:k"], args_),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        for call in contenders.values():  # warm-up: connections, script cache
            await _batch(call, 200)
        for _ in range(args.batches):
            for name, call in contenders.items():
                results[name].append(await _batch(call, args.calls))
        await kv.aclose()
    print(f"{args.batches} alternating batches of {args.calls} sequential EVALSHA each\n")
    print("| client | CPU µs/call median (best) | wall µs/call median (best) |")
    print("| --- | ---: | ---: |")
    for name, batches in results.items():
        cpu = [b[0] for b in batches]
        wall = [b[1] for b in batches]
        print(
            f"| {name} | {statistics.median(cpu):.1f} ({min(cpu):.1f}) | "
            f"{statistics.median(wall):.1f} ({min(wall):.1f}) |"
        )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--calls", type=int, default=1000)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
