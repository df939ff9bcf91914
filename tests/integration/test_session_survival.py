"""Sessions survive Redis stalls and outages and are shared by every instance (real
PostgreSQL, private redis-server processes paused with CLIENT PAUSE or killed)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
from redis.asyncio import Redis

from cortiware.app import create_app
from tests.conftest import SettingsFactory
from tests.integration.conftest import in_loop_client
from tests.support.auth import STAFF_PASSWORDS
from tests.support.servers import redis_server

# The production command timeout: these tests are about what production does.
PRODUCTION_TIMEOUT = "0.25"


async def _login(http: httpx.AsyncClient, role: str) -> str:
    http.cookies.clear()  # a fresh visitor each time (no session, so no CSRF token needed)
    response = await http.post(
        "/api/auth/login", json={"username": role, "password": STAFF_PASSWORDS[role]}
    )
    assert response.status_code == 200
    return response.cookies["cw_session"]


async def _me(http: httpx.AsyncClient, session_id: str) -> int:
    http.cookies.clear()
    response = await http.get("/api/auth/me", headers={"Cookie": f"cw_session={session_id}"})
    return response.status_code


async def _hammer(http: httpx.AsyncClient, sessions: list[str], seconds: float) -> Counter[int]:
    """Concurrent `/api/auth/me` requests over every session for `seconds`."""
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = await asyncio.gather(*(_me(http, session) for session in sessions * 4))
        statuses.update(batch)
    return statuses


async def test_a_redis_stall_logs_nobody_out(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    """Redis paused for 1.5 s (CLIENT PAUSE) under concurrent traffic: every request of every
    logged-in session answers 200, during the stall and after it."""
    with redis_server(tmp_path) as redis:
        settings = make_settings(
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            CORTIWARE_REDIS_TIMEOUT=PRODUCTION_TIMEOUT,
            RATE_LIMIT_DEFAULT="1000000/minute",
        )
        async with in_loop_client(create_app(settings)) as http:
            sessions = [await _login(http, role) for role in STAFF_PASSWORDS for _ in range(3)]
            before = await _hammer(http, sessions, 0.5)
            admin = Redis.from_url(redis.url)
            try:
                await admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
                during = await _hammer(http, sessions, 1.5)
                after = await _hammer(http, sessions, 1.0)
            finally:
                await admin.aclose()
    assert set(before) == {200}
    assert set(during) == {200}, during
    assert set(after) == {200}, after


async def test_a_redis_kill_logs_nobody_out_and_logins_during_it_outlive_it(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    """Redis killed: sessions from before keep working; a login made while Redis is down is
    still valid after Redis is back (it was never kept in one process's memory)."""
    with redis_server(tmp_path) as redis:
        settings = make_settings(
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            CORTIWARE_REDIS_TIMEOUT=PRODUCTION_TIMEOUT,
            RATE_LIMIT_DEFAULT="1000000/minute",
        )
        async with in_loop_client(create_app(settings)) as http:
            before = await _login(http, "provider")
            redis.kill()
            during_outage = await _hammer(http, [before], 0.5)
            made_during = await _login(http, "developer")
            assert await _me(http, made_during) == 200
            redis.start()  # same port: the app's pool finds it again
            deadline = time.monotonic() + 5
            while (await http.get("/api/health")).json()["checks"]["redis"] != "ok":
                assert time.monotonic() < deadline, "back on Redis within 5 s"
                await asyncio.sleep(0.1)
            after = await _hammer(http, [before, made_during], 0.5)
    assert set(during_outage) == {200}
    assert set(after) == {200}, after


async def test_a_session_is_served_and_revoked_by_every_instance(
    make_settings: SettingsFactory, database_url: str, redis_url: str
) -> None:
    """Two instances on one database and Redis: a login on one is valid on the other, and a
    logout on the other ends it on both."""
    settings = make_settings(DATABASE_URL=database_url, REDIS_URL=redis_url)
    async with (
        in_loop_client(create_app(settings)) as first,
        in_loop_client(create_app(settings)) as second,
    ):
        login = await first.post(
            "/api/auth/login",
            json={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
        )
        session = login.cookies["cw_session"]
        first.cookies.clear()
        assert await _me(second, session) == 200
        logout = await second.post(
            "/api/auth/logout",
            headers={
                "Cookie": f"cw_session={session}",
                "X-CSRF-Token": login.json()["csrf_token"],
            },
        )
        assert logout.status_code == 204
        assert await _me(first, session) == 401
        assert await _me(second, session) == 401


async def test_a_session_outlives_a_redis_flush(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    """Redis losing every key (a restart without persistence) logs nobody out."""
    with redis_server(tmp_path) as redis:
        settings = make_settings(DATABASE_URL=database_url, REDIS_URL=redis.url)
        async with in_loop_client(create_app(settings)) as http:
            session = await _login(http, "accountant")
            admin = Redis.from_url(redis.url)
            try:
                await admin.flushall()  # a private server: nobody else's keys
            finally:
                await admin.aclose()
            assert await _me(http, session) == 200
