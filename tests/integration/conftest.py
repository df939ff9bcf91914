"""Integration fixtures: a real PostgreSQL database and Redis per run, isolated and cleaned."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.app import create_app
from cortiware.cache import Cache
from cortiware.db import migrate
from cortiware.db.engine import create_engine
from cortiware.kv import KV, KVConfig
from cortiware.settings import Settings
from tests.conftest import SettingsFactory
from tests.integration.backends import (
    Backends,
    BackendUnavailable,
    application_role,
    pick,
    scratch_database,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration carries the `integration` marker."""
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def backends(request: pytest.FixtureRequest) -> Iterator[Backends]:
    """The chosen PostgreSQL/Redis servers, announced on the terminal."""
    try:
        chosen = pick()
    except BackendUnavailable as exc:
        pytest.exit(f"cortiware: {exc}", returncode=1)
    # Written around pytest's output capture, so a green run shows the banner too (CI's
    # testcontainers leg checks for it).
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(chosen.describe())
    yield chosen
    chosen.stop()


DATABASE_ROLE = os.environ.get("CORTIWARE_TEST_DATABASE_ROLE", "owner")
"""`application`: the run's tests connect as a least-privilege login role in `cortiware_app`,
as the deployed service does (`CORTIWARE_TEST_DATABASE_ROLE=application pytest
tests/integration`); `owner` (default): as the server's admin user."""


@pytest.fixture(scope="session")
def database_url(backends: Backends) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run (dropped afterwards), reached as
    `CORTIWARE_TEST_DATABASE_ROLE` says."""
    with scratch_database(backends.admin_database_url) as url:
        asyncio.run(migrate.upgrade(url))
        if DATABASE_ROLE == "application":
            with application_role(url) as app_url:
                yield app_url
        else:
            yield url


@pytest.fixture
def isolated_database_url(backends: Backends) -> Iterator[str]:
    """A migrated database of this test's own, for tests that act on every row (replay, sync)."""
    with scratch_database(backends.admin_database_url) as url:
        asyncio.run(migrate.upgrade(url))
        yield url


@pytest.fixture(scope="session")
def empty_database_url(backends: Backends) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema, for migration tests."""
    with scratch_database(backends.admin_database_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(backends: Backends) -> str:
    """The Redis server URL; tests isolate by key prefix and never flush it."""
    return backends.redis_url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test."""
    return f"cwtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def pg_settings(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> Settings:
    """Test settings on the run's PostgreSQL database and Redis."""
    return make_settings(
        DATABASE_URL=database_url, REDIS_URL=redis_url, CORTIWARE_REDIS_PREFIX=redis_prefix
    )


@pytest.fixture
def app(pg_settings: Settings) -> Litestar:
    """The application on PostgreSQL and Redis."""
    return create_app(pg_settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client for `app`, lifespan included."""
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the run's database, on the test's own loop (for calling services directly)."""
    engine = create_engine(database_url, pool_size=2)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@pytest.fixture
async def cache(redis_url: str, redis_prefix: str) -> AsyncIterator[Cache]:
    """A cache on the run's Redis under the test's own key prefix."""
    kv = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix, command_timeout=2))
    try:
        yield Cache(kv)
    finally:
        await kv.aclose()


@asynccontextmanager
async def in_loop_client(
    app: Litestar, *, peer: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-loop ASGI client for `app`, lifespan included, whose requests really overlap.

    `AsyncTestClient` hands each request to its portal thread, so requests `gather`ed on it
    run one after another; tests about concurrency use this client instead. (A context
    manager, not a fixture: the lifespan's cancel scope must end in the task it began in.)
    `peer` is the socket address the app sees (a load balancer's, say).
    """
    transport = httpx.ASGITransport(app=app, client=peer)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http,
    ):
        yield http
