"""p99 latency that rate limiting + idempotency add to a real endpoint over loopback.

Two uvicorn processes (one worker each) serve the same `POST /api/bench` handler: `bare`
without the Redis middleware, `full` with `redis_middleware` + `redis_lifespan` on the
private Redis. Requests are sequential over one keep-alive connection, each with a fresh
`Idempotency-Key`, so every request pays two script calls: the claim (which also takes the
rate-limit decision) and the completion. The Redis commands each app sent per request are
read from `INFO commandstats`, so a run that had fallen back to memory would show.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
from litestar import Litestar, get, post

from benchmarks._redis import command_calls, free_port, reset_stats
from cortiware.errors import exception_handlers
from cortiware.kv.wiring import redis_lifespan, redis_middleware
from cortiware.settings import Settings

_WARM_UP = 200


@post("/api/bench", sync_to_thread=False)
def _bench() -> dict[str, str]:
    return {"ok": "yes"}


@get("/api/health/live", sync_to_thread=False)
def _live() -> dict[str, str]:
    return {"status": "ok"}


def bare_app() -> Litestar:
    """The endpoint alone."""
    return Litestar(route_handlers=[_bench, _live], exception_handlers=exception_handlers)


def full_app() -> Litestar:
    """The endpoint behind the service's rate limiting and idempotency middleware."""
    settings = Settings.from_env()
    return Litestar(
        route_handlers=[_bench, _live],
        middleware=redis_middleware(settings),
        lifespan=[partial(redis_lifespan, settings=settings)],
        exception_handlers=exception_handlers,
    )


def _serve(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", f"benchmarks.latency:{factory}"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _latencies(port: int, requests: int) -> list[float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await client.get("/api/health/live")).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        samples: list[float] = []
        for i in range(requests + _WARM_UP):
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            started = time.perf_counter()
            response = await client.post("/api/bench", headers=headers)
            elapsed = time.perf_counter() - started
            assert response.status_code == 201, response.status_code
            if i >= _WARM_UP:  # warm-up excluded
                samples.append(elapsed * 1000)
        return samples


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `samples`."""
    return statistics.quantiles(samples, n=1000)[int(q * 10) - 1]


@dataclass(frozen=True, slots=True)
class AppLatency:
    """One app's latency samples (ms) and the Redis commands it sent per request."""

    samples: list[float]
    commands_per_request: dict[str, float]
    """From `INFO commandstats` over the whole run (warm-up included); script-internal
    commands (`get`, `set`, `hset`, `time`...) appear here too. A full app that had fallen
    back to memory would show none: the check that the numbers are Redis's."""


async def measure(redis_url: str, env: dict[str, str], requests: int) -> dict[str, AppLatency]:
    """Latency samples and Redis command counts for `bare_app` and `full_app`."""
    results: dict[str, AppLatency] = {}
    server_env = {**env, "REDIS_URL": redis_url, "RATE_LIMIT_DEFAULT": "1000000/minute"}
    for name in ("bare_app", "full_app"):
        port = free_port()
        process = _serve(name, port, server_env)
        try:
            reset_stats(redis_url)
            samples = await _latencies(port, requests)
            calls = command_calls(redis_url)
        finally:
            process.terminate()
            process.wait(timeout=10)
        sent = requests + _WARM_UP
        per_request = {
            command: count / sent
            for command, count in sorted(calls.items())
            if command not in ("config|resetstat", "info", "config")
        }
        results[name] = AppLatency(samples, per_request)
    return results
