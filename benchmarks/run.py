"""`make bench`: the service against bare Litestar over HTTP, rate-limit throughput vs
peers, and the latency the rate-limit and idempotency middleware add.

Usage: `.venv/bin/python -m benchmarks.run [--seconds 5] [--concurrency 32] [--requests 3000]
[--http-rounds 4] [--http-seconds 10] [--skip-http]`. Everything runs against private
redis-servers started here and a scratch PostgreSQL database, all removed at the end; the
shared Redis is never touched. The HTTP comparison (`benchmarks.http`) runs first, on both
CPUs; then this process pins itself to CPU 0 and its Redis to CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time

import redis

from benchmarks import http, latency, ratelimit
from benchmarks._redis import private_redis

BENCH_ENV = {
    "APP_ENV": "test",
    "CORTIWARE_REDIS_PREFIX": "bench:",
}


def _calibration() -> float:
    """Seconds for 10**7 additions in a Python loop: how fast this machine runs right now.

    Printed with every run, because the same VM has measured 0.65 s one day and 0.84-1.6 s
    within one evening (docs/benchmarks.md): compare runs only at like speeds.
    """
    started = time.perf_counter()
    total = 0
    for i in range(10**7):
        total += i
    return time.perf_counter() - started


def _settings_env(workdir: str) -> dict[str, str]:
    return {**BENCH_ENV, "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3"}


async def _main(args: argparse.Namespace) -> None:
    print(f"machine speed: 10**7 Python additions in {_calibration():.2f} s\n")
    if not args.skip_http:
        # Not inside the event loop: the comparison runs its own (for the database setup).
        await asyncio.to_thread(http.run_from, args)
        print()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    with private_redis(cpu=1) as url, tempfile.TemporaryDirectory() as workdir:
        server = redis.Redis.from_url(url).info("server")["redis_version"]
        print(f"python {platform.python_version()}, redis-server {server}, {os.cpu_count()} CPUs")
        print(f"machine speed: 10**7 Python additions in {_calibration():.2f} s (CPU 0)")
        print(f"rate-limit decisions: concurrency {args.concurrency}, {args.seconds}s each\n")
        header = "| limiter | decisions/s | client commands/decision (MONITOR) |"
        print(header + " commandstats/decision |")
        print("| --- | ---: | ---: | --- |")
        results = []
        for make in ratelimit.contenders(url):
            result = await ratelimit.measure(url, make, args.concurrency, args.seconds)
            results.append(result)
            commands = ", ".join(f"{k} {v:.2f}" for k, v in result.commands.items())
            print(
                f"| {result.name} | {result.per_second:,.0f} | {result.round_trips:.2f} | "
                f"{commands} |"
            )
        ours = results[0].per_second
        print()
        for other in results[1:]:
            print(f"cortiware GCRA vs {other.name}: {ours / other.per_second:.1f}x")

        print(f"\nlatency over loopback, {args.requests} sequential POSTs each:\n")
        apps = await latency.measure(url, _settings_env(workdir), args.requests)
        print("| app | p50 ms | p99 ms | Redis commands/request (INFO commandstats) |")
        print("| --- | ---: | ---: | --- |")
        for name, app in apps.items():
            p50 = statistics.median(app.samples)
            p99 = latency.percentile(app.samples, 99)
            commands = ", ".join(f"{k} {v:.2f}" for k, v in app.commands_per_request.items())
            print(f"| {name} | {p50:.3f} | {p99:.3f} | {commands or 'none'} |")
        bare, full = apps["bare_app"].samples, apps["full_app"].samples
        added50 = statistics.median(full) - statistics.median(bare)
        added99 = latency.percentile(full, 99) - latency.percentile(bare, 99)
        print(f"\nadded by rate limit + idempotency: p50 {added50:.3f} ms, p99 {added99:.3f} ms")


def main() -> None:
    """Parse arguments and run every benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--skip-http", action="store_true", help="skip the wrk comparison")
    http.add_arguments(parser)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
