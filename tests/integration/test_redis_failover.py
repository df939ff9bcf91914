"""Killing the service's Redis mid-run: no 5xx, per-process limits, degraded, then recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, get, post
from litestar.datastructures import State

from cortiware.db.engine import create_engine
from cortiware.errors import exception_handlers
from cortiware.health import health
from cortiware.wiring import redis_lifespan, redis_middleware
from tests.conftest import SettingsFactory
from tests.support.servers import redis_server


@get("/api/ping", sync_to_thread=False)
def _ping() -> dict[str, str]:
    return {"ok": "yes"}


@post("/api/items", sync_to_thread=False)
def _items() -> dict[str, str]:
    return {"ok": "yes"}


def _app(settings: Any) -> Litestar:
    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        app.state.db_engine = create_engine(settings.database_url)
        yield
        await app.state.db_engine.dispose()

    return Litestar(
        route_handlers=[_ping, _items, health],
        middleware=redis_middleware(settings),
        lifespan=[database, partial(redis_lifespan, settings=settings)],
        exception_handlers=exception_handlers,
        state=State({"settings": settings}),
    )


async def test_dead_redis_falls_back_without_5xx_and_recovers_within_5_seconds(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """With Redis killed: no 5xx, limits enforced per process, health degraded; back in 5 s."""
    with redis_server(tmp_path) as redis:
        settings = make_settings(REDIS_URL=redis.url, RATE_LIMIT_DEFAULT="5/hour")
        app = _app(settings)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with app.lifespan(), client:
            assert [(await client.get("/api/ping")).status_code for _ in range(2)] == [200, 200]
            assert (await client.get("/api/health")).json()["checks"]["redis"] == "ok"

            redis.kill()
            started = time.monotonic()
            keyed = await client.post("/api/items", headers={"Idempotency-Key": "a"})
            replay = await client.post("/api/items", headers={"Idempotency-Key": "a"})
            down = [(await client.get("/api/ping")).status_code for _ in range(6)]
            elapsed = time.monotonic() - started
            degraded = (await client.get("/api/health")).json()

            # Memory limits are fresh per process: 5 pass (the POSTs used 2), then 429.
            assert keyed.status_code == 201
            assert replay.status_code == 201
            assert replay.headers["idempotent-replayed"] == "true"
            assert down == [200, 200, 200, 429, 429, 429]
            assert elapsed < 1.0, "a dead Redis must not add per-request waits"
            assert degraded["status"] == "degraded"
            assert degraded["checks"]["redis"] == "degraded"

            redis.start()
            back_at = time.monotonic()
            while time.monotonic() - back_at < 5:
                if app.state.kv.health() == "ok":
                    break
                await asyncio.sleep(0.05)
            assert app.state.kv.health() == "ok", "not back on Redis within 5 s"
            # Back on the (restarted, empty) Redis: a fresh shared bucket.
            assert (await client.get("/api/ping")).status_code == 200
            assert (await client.get("/api/health")).json()["status"] == "healthy"
