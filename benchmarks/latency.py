"""p99 latency that rate limiting + idempotency add to a real endpoint over loopback.

Two uvicorn processes (one worker each) serve the same `POST /api/bench` handler: `bare`
without the Redis middleware, `full` with `redis_middleware` + `redis_lifespan` on the
private Redis. Requests are sequential over one keep-alive connection per app, alternating
between the two apps (random order in each round, so both meet the same machine noise),
each with a fresh `Idempotency-Key`: every request to `full` pays two script calls, the
claim (which also takes the rate-limit decision) and the completion. The Redis commands
`full` sent per request are read from `INFO commandstats`, so a run that had fallen back to
memory would show.
"""

from __future__ import annotations

import asyncio
import os
import random
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
from cortiware.settings import Settings
from cortiware.wiring import redis_lifespan, redis_middleware

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


async def _ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if (await client.get("/api/health/live")).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _timed_post(client: httpx.AsyncClient) -> float:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    started = time.perf_counter()
    response = await client.post("/api/bench", headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.status_code
    return elapsed * 1000


async def _interleaved(ports: dict[str, int], requests: int) -> dict[str, list[float]]:
    """Sequential POSTs alternating between the apps, in a random order within each round,
    so that both meet the same machine noise (one run after the other, a noisy stretch
    during one of them used to move the difference by half a millisecond)."""
    clients = {
        name: httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for name, port in ports.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in ports}
    order = list(ports)
    rounds = random.Random(0)
    try:
        for client in clients.values():
            await _ready(client)
        for i in range(requests + _WARM_UP):
            rounds.shuffle(order)
            for name in order:
                elapsed = await _timed_post(clients[name])
                if i >= _WARM_UP:  # warm-up excluded
                    samples[name].append(elapsed)
    finally:
        for client in clients.values():
            await client.aclose()
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
    server_env = {**env, "REDIS_URL": redis_url, "RATE_LIMIT_DEFAULT": "1000000/minute"}
    ports = {name: free_port() for name in ("bare_app", "full_app")}
    processes = [_serve(name, port, server_env) for name, port in ports.items()]
    try:
        reset_stats(redis_url)
        samples = await _interleaved(ports, requests)
        calls = command_calls(redis_url)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    # Only the full app talks to Redis (besides this harness's own `INFO`/`CONFIG`).
    sent = requests + _WARM_UP
    per_request = {
        command: count / sent
        for command, count in sorted(calls.items())
        if command not in ("config|resetstat", "info", "config", "hello")
    }
    return {
        "bare_app": AppLatency(samples["bare_app"], {}),
        "full_app": AppLatency(samples["full_app"], per_request),
    }
