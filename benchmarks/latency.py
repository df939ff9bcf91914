"""p99 latency that rate limiting + idempotency add to a real endpoint over loopback.

Two uvicorn processes (one worker each) serve the same `POST /api/bench` handler: `bare`
without the Redis middleware, `full` with `redis_middleware` + `redis_lifespan` on the
private Redis. Requests are sequential over one keep-alive connection, each with a fresh
`Idempotency-Key` (so every request pays the limiter EVALSHA plus the claim and complete).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from functools import partial
from pathlib import Path

import httpx
from litestar import Litestar, get, post

from benchmarks._redis import free_port
from cortiware.errors import exception_handlers
from cortiware.kv.wiring import redis_lifespan, redis_middleware
from cortiware.settings import Settings


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
        for i in range(requests + 200):
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            started = time.perf_counter()
            response = await client.post("/api/bench", headers=headers)
            elapsed = time.perf_counter() - started
            assert response.status_code == 201, response.status_code
            if i >= 200:  # warm-up excluded
                samples.append(elapsed * 1000)
        return samples


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `samples`."""
    return statistics.quantiles(samples, n=1000)[int(q * 10) - 1]


async def measure(redis_url: str, env: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Latency samples in ms for `bare` and `full`."""
    results: dict[str, list[float]] = {}
    server_env = {**env, "REDIS_URL": redis_url, "RATE_LIMIT_DEFAULT": "1000000/minute"}
    for name in ("bare_app", "full_app"):
        port = free_port()
        process = _serve(name, port, server_env)
        try:
            results[name] = await _latencies(port, requests)
        finally:
            process.terminate()
            process.wait(timeout=10)
    return results
