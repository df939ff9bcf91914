"""An unreachable database: 503 problem+json with Retry-After within a second, one log line
per outage, recovery without a restart (a throw-away PostgreSQL stopped and started, and one
refusing connections; real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cortiware.app import create_app
from cortiware.db import migrate
from cortiware.db.engine import create_engine
from tests.conftest import SettingsFactory
from tests.integration.conftest import in_loop_client
from tests.support.auth import STAFF_PASSWORDS
from tests.support.postgres_server import PostgresServer, postgres_server

UNLIMITED = {
    "RATE_LIMIT_DEFAULT": "1000000/minute",
    "RATE_LIMIT_AUTH": "1000000/minute",
    "RATE_LIMIT_AUTH_IP": "1000000/minute",
    "RATE_LIMIT_ONBOARDING": "1000000/minute",
}


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    """A migrated throw-away PostgreSQL this test may stop."""
    with postgres_server() as server:
        asyncio.run(migrate.upgrade(server.url))
        yield server


def _events(capfd: pytest.CaptureFixture[str]) -> list[str]:
    """The `event` of every JSON log line written since the last call."""
    events = []
    for line in capfd.readouterr().out.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                events.append(str(record.get("event")))
    return events


async def _database_routes(
    http: httpx.AsyncClient, cookie: str
) -> list[tuple[httpx.Response, float]]:
    """One request to each route that needs the database, with its duration."""
    results = []
    for method, path, body in (
        ("POST", "/api/auth/login", {"username": "nobody@example.com", "password": "x" * 12}),
        ("GET", "/api/provider/invites", None),
        ("GET", "/api/provider/audit", None),
        ("GET", "/api/provider/coupons", None),
    ):
        started = time.monotonic()
        headers = {} if path == "/api/auth/login" else {"Cookie": cookie}
        response = await http.request(method, path, json=body, headers=headers)
        results.append((response, time.monotonic() - started))
    return results


async def _provider_cookie(http: httpx.AsyncClient) -> str:
    login = await http.post(
        "/api/auth/login", json={"username": "provider", "password": STAFF_PASSWORDS["provider"]}
    )
    assert login.status_code == 200
    cookie = f"cw_session={login.cookies['cw_session']}"
    http.cookies.clear()
    return cookie


def _assert_unavailable(results: list[tuple[httpx.Response, float]]) -> None:
    for response, seconds in results:
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) >= 1
        assert seconds < 1.0, (response.request.url, seconds)


async def _until_served(http: httpx.AsyncClient, cookie: str) -> float:
    started = time.monotonic()
    while True:
        results = await _database_routes(http, cookie)
        if all(r.status_code < 500 for r, _ in results):
            return time.monotonic() - started
        assert time.monotonic() - started < 5, [r.status_code for r, _ in results]
        await asyncio.sleep(0.1)


async def test_a_stopped_database_is_503_logged_once_and_recovers_by_itself(
    make_settings: SettingsFactory,
    redis_url: str,
    pg: PostgresServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """PostgreSQL stopped: every database route answers 503 problem+json with Retry-After in
    under a second, a cached session stays logged in, the outage is one log line and no
    traceback; started again, the routes answer within 5 s."""
    settings = make_settings(DATABASE_URL=pg.url, REDIS_URL=redis_url, **UNLIMITED)
    async with in_loop_client(create_app(settings)) as http:
        cookie = await _provider_cookie(http)
        assert all(r.status_code < 500 for r, _ in await _database_routes(http, cookie))
        _events(capfd)
        pg.stop()
        try:
            for _ in range(5):
                _assert_unavailable(await _database_routes(http, cookie))
            me = await http.get("/api/auth/me", headers={"Cookie": cookie})
        finally:
            pg.start()
        assert me.status_code == 200, "the session cached in Redis needs no database"
        recovered_in = await _until_served(http, cookie)
    events = _events(capfd)
    assert events.count("database unavailable") == 1
    assert events.count("database available again") == 1
    assert "unhandled_exception" not in events
    assert recovered_in < 5


async def test_a_database_refusing_connections_is_503_not_500(
    make_settings: SettingsFactory,
    redis_url: str,
    pg: PostgresServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The database up but refusing new sessions (connections disallowed, existing ones
    terminated): 503 with Retry-After, then served again once it accepts them."""
    settings = make_settings(DATABASE_URL=pg.url, REDIS_URL=redis_url, **UNLIMITED)
    admin = create_engine(pg.url.rsplit("/", 1)[0] + "/template1", pool_size=1)
    try:
        async with in_loop_client(create_app(settings)) as http:
            cookie = await _provider_cookie(http)
            _events(capfd)
            async with admin.connect() as conn:
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ALTER DATABASE postgres ALLOW_CONNECTIONS false"))
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = 'postgres' AND pid <> pg_backend_pid()"
                    )
                )
            try:
                for _ in range(3):
                    _assert_unavailable(await _database_routes(http, cookie))
            finally:
                async with admin.connect() as conn:
                    await conn.execute(text("COMMIT"))
                    await conn.execute(text("ALTER DATABASE postgres ALLOW_CONNECTIONS true"))
            await _until_served(http, cookie)
    finally:
        await admin.dispose()
    events = _events(capfd)
    assert events.count("database unavailable") == 1
    assert "unhandled_exception" not in events


async def test_a_session_not_in_redis_is_503_not_401_while_the_database_is_down(
    make_settings: SettingsFactory, redis_url: str, pg: PostgresServer
) -> None:
    """With the database down and the session not cached, the caller is not known to be
    logged out: 503 with Retry-After, never 401."""
    settings = make_settings(DATABASE_URL=pg.url, REDIS_URL=redis_url, **UNLIMITED)
    app: Any = create_app(settings)
    async with in_loop_client(app) as http:
        cookie = await _provider_cookie(http)
        store = app.state["session_store"]
        assert store.cache is not None
        session_id = cookie.split("=", 1)[1]
        await store.cache.delete(store._key(session_id))
        pg.stop()
        try:
            me = await http.get("/api/auth/me", headers={"Cookie": cookie})
        finally:
            pg.start()
        assert me.status_code == 503
        assert int(me.headers["retry-after"]) >= 1
        assert (await http.get("/api/auth/me", headers={"Cookie": cookie})).status_code == 200
