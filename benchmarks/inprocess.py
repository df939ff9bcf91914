"""Microseconds per request inside one process: the service's ASGI app against bare Litestar.

`python -m benchmarks.inprocess [--requests 20000] [--rounds 5] [--concurrency 32]
[--path /api/health/live] [--profile FILE]`

No server, no sockets: each request is a fresh ASGI scope (the headers wrk sends) run as its
own task on uvloop, as uvicorn runs it, answered into a `send` that keeps nothing. What is
left is the application's own cost per request, the part `make bench`'s ratio is about; the
rest of a request over HTTP (uvicorn, httptools, the kernel) is the same for both apps.
The service runs with `APP_ENV=test` on an embedded SQLite file and in-memory stores (no
Redis round trips: `GET /api/plans` is then the cost of its code, not of Redis), its access
log written to /dev/null. Rounds alternate the two apps; the fastest round of each is
reported (the one least disturbed by the rest of the machine).

`--profile FILE` runs the service's rounds under cProfile and writes the stats to FILE
(`python -m pstats FILE`), to see where those microseconds go.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import uvloop

from benchmarks import http

_App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope(path: str) -> dict[str, Any]:
    # What uvicorn's httptools protocol builds for `wrk` (which sends only Host).
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _run(app: _App, path: str, requests: int, concurrency: int) -> float:
    """µs per request over `requests` requests, each its own task, `concurrency` at a time."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for _ in range(requests // concurrency):
        tasks = [loop.create_task(app(_scope(path), _receive, send)) for _ in range(concurrency)]
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    if any(status != 200 for status in statuses):
        raise RuntimeError(f"{path}: statuses {sorted(set(statuses))}")
    return elapsed / requests * 1e6


def _service(workdir: str) -> Any:
    from tests.conftest import TEST_ENV

    from cortiware.app import create_app
    from cortiware.settings import Settings

    env = {**TEST_ENV, "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3"}
    env["RATE_LIMIT_DEFAULT"] = "1000000/second"
    return create_app(Settings.from_env(env))


async def _main(args: argparse.Namespace, devnull: TextIO) -> None:
    from cortiware import logging as service_logging

    with tempfile.TemporaryDirectory() as workdir:
        service = _service(workdir)
        service_logging.access_log.stream = devnull
        async with service.lifespan():
            from cortiware.db import migrate

            await migrate.upgrade(f"sqlite:///{workdir}/bench.sqlite3")
            if args.path == "/api/plans":
                await _seed(workdir)
            plans: list[bytes] = []

            async def grab(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    plans.append(message["body"])

            await service(_scope("/api/plans"), _receive, grab)
            plans_file = Path(workdir) / "plans.json"
            plans_file.write_bytes(b"".join(plans))
            os.environ[http.PLANS_FILE_ENV] = str(plans_file)
            bare = http.bare_app()
            apps: dict[str, _App] = {"bare": bare, "service": service}  # type: ignore[dict-item]
            for app in apps.values():
                await _run(
                    app, args.path, 2000, args.concurrency
                )  # warm-up: caches, first-request work
            results: dict[str, list[float]] = {name: [] for name in apps}
            profiler = cProfile.Profile() if args.profile else None
            for i in range(args.rounds):
                order = list(apps) if i % 2 == 0 else list(reversed(apps))
                for name in order:
                    gc.collect()
                    if profiler is not None and name == "service":
                        profiler.enable()
                    results[name].append(
                        await _run(apps[name], args.path, args.requests, args.concurrency)
                    )
                    if profiler is not None and name == "service":
                        profiler.disable()
            if profiler is not None:
                profiler.dump_stats(args.profile)
    bare_us, service_us = (min(results[n]) for n in ("bare", "service"))
    print(
        f"GET {args.path}, {args.requests} requests x {args.rounds} rounds in process: "
        f"bare {bare_us:.1f} µs, service {service_us:.1f} µs, "
        f"service adds {service_us - bare_us:.1f} µs "
        f"(rounds: bare {', '.join(f'{v:.1f}' for v in results['bare'])}; "
        f"service {', '.join(f'{v:.1f}' for v in results['service'])})"
    )


async def _seed(workdir: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    from cortiware.db.engine import create_engine
    from cortiware.seed import seed

    engine = create_engine(f"sqlite:///{workdir}/bench.sqlite3", pool_size=1)
    async with AsyncSession(engine) as session, session.begin():
        await seed(session)
    await engine.dispose()


def main() -> None:
    """Parse the options, run on uvloop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--path", default="/api/health/live", choices=list(http.TARGETS))
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="requests in flight at once (each of make bench's two workers holds about 32 of "
        "wrk's 64 connections; 1 puts each request in an event-loop iteration of its own)",
    )
    parser.add_argument("--profile", help="write the service rounds' cProfile stats here")
    args = parser.parse_args()
    with Path(os.devnull).open("w") as devnull:
        uvloop.run(_main(args, devnull))


if __name__ == "__main__":
    main()
