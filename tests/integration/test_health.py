"""Health endpoints against real PostgreSQL and Redis, and with each made unreachable."""

from __future__ import annotations

import time
from pathlib import Path

from litestar.testing import AsyncTestClient

from cortiware.app import create_app
from tests.conftest import SettingsFactory
from tests.support.servers import free_port, redis_server


async def test_healthy_with_database_and_redis(client: AsyncTestClient) -> None:
    """With both dependencies up, health is 200 `healthy` with every check ok."""
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"] == {"database": "ok", "redis": "ok", "config": "ok"}
    assert body["version"]
    assert (await client.get("/api/health/live")).json() == {"status": "ok"}


async def test_redis_down_is_degraded(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    """Killing the (private) Redis turns health into 200 `degraded`, answered quickly."""
    with redis_server(tmp_path) as redis:
        app = create_app(make_settings(DATABASE_URL=database_url, REDIS_URL=redis.url))
        async with AsyncTestClient(app=app) as client:
            assert (await client.get("/api/health")).json()["status"] == "healthy"
            redis.kill()
            started = time.monotonic()
            response = await client.get("/api/health")
            elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["redis"] != "ok"
    assert elapsed < 2


async def test_database_unreachable_is_503_within_two_seconds(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    """A database nobody listens on makes health 503 `unhealthy` in under 2 s."""
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(make_settings(DATABASE_URL=dead, REDIS_URL=redis_url))
    async with AsyncTestClient(app=app) as client:
        started = time.monotonic()
        response = await client.get("/api/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["database"] == "down"
    assert elapsed < 2


async def test_database_that_hangs_is_503_within_two_seconds(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    """A database port that accepts but never answers still yields 503 in under 2 s."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        app = create_app(
            make_settings(
                DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x", REDIS_URL=redis_url
            )
        )
        async with AsyncTestClient(app=app) as client:
            started = time.monotonic()
            response = await client.get("/api/health")
            elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert response.status_code == 503
    assert elapsed < 2


async def test_version_is_the_deployed_image_tag(
    make_settings: SettingsFactory, database_url: str, redis_url: str
) -> None:
    """`APP_VERSION` is the version `/api/health` and `/api/health/ready` report."""
    settings = make_settings(DATABASE_URL=database_url, REDIS_URL=redis_url, APP_VERSION="r42.7")
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/api/health")).json()["version"] == "r42.7"
        assert (await client.get("/api/health/ready")).json() == {
            "status": "ready",
            "version": "r42.7",
        }


async def test_database_outage_keeps_the_task_ready(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    """With the database unreachable the load balancer's path stays 200 while `/api/health`
    answers 503 and a database-backed route a problem+json 5xx, so no task is replaced."""
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(make_settings(DATABASE_URL=dead, REDIS_URL=redis_url))
    async with AsyncTestClient(app=app) as client:
        ready = await client.get("/api/health/ready")
        health = await client.get("/api/health")
        plans = await client.get("/api/plans")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.headers["cache-control"] == "no-store"
    assert health.status_code == 503
    assert plans.status_code >= 500  # which 5xx a route answers is the outage handling's
    assert plans.headers["content-type"].startswith("application/problem+json")
