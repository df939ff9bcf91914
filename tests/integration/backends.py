"""Which real PostgreSQL and Redis the integration tests use, and how each run isolates itself.

Order: URLs from CORTIWARE_TEST_DATABASE_URL / CORTIWARE_TEST_REDIS_URL; else
testcontainers when a Docker engine answers; else the servers on 127.0.0.1:5432 and :6379.
Nothing reachable fails the run with instructions; integration tests are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379"
POSTGRES_IMAGE = os.environ.get("CORTIWARE_TEST_POSTGRES_IMAGE", "postgres:16")
REDIS_IMAGE = os.environ.get("CORTIWARE_TEST_REDIS_IMAGE", "redis:7")
HOW_TO = (
    "no PostgreSQL/Redis reachable for integration tests. Provide one of: "
    "CORTIWARE_TEST_DATABASE_URL=postgresql://… and CORTIWARE_TEST_REDIS_URL=redis://…; "
    "a running Docker engine (testcontainers; images via CORTIWARE_TEST_POSTGRES_IMAGE / "
    "CORTIWARE_TEST_REDIS_IMAGE); or servers on 127.0.0.1:5432 (user postgres) and :6379."
)


class BackendUnavailable(RuntimeError):
    """No usable database/Redis for the integration tests."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass
class Backends:
    """Server-level URLs (admin database / Redis without index) and how they were found."""

    kind: str
    admin_database_url: str
    redis_url: str
    _containers: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the terminal: which backend, and where."""
        pg = urlsplit(self.admin_database_url)
        rd = urlsplit(self.redis_url)
        return (
            f"cortiware integration backend: {self.kind} "
            f"(postgres {pg.hostname}:{pg.port}, redis {rd.hostname}:{rd.port})"
        )

    def stop(self) -> None:
        """Stop containers this run started."""
        for container in self._containers:
            with contextlib.suppress(Exception):
                container.stop()


def _tcp_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _docker_answers() -> bool:
    import docker

    try:
        client = docker.from_env(timeout=3)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def pick() -> Backends:
    """Choose backends in the documented order."""
    db_url = os.environ.get("CORTIWARE_TEST_DATABASE_URL")
    redis_url = os.environ.get("CORTIWARE_TEST_REDIS_URL")
    if db_url or redis_url:
        if not (db_url and redis_url):
            raise BackendUnavailable(
                "set both CORTIWARE_TEST_DATABASE_URL and CORTIWARE_TEST_REDIS_URL, or neither"
            )
        return Backends("environment", db_url, redis_url)
    local = _tcp_open("127.0.0.1", 5432) and _tcp_open("127.0.0.1", 6379)
    if _docker_answers():
        try:
            return _start_containers()
        except BackendUnavailable as exc:
            if not local:
                raise
            # An engine without the images (offline) should not stop a developer's run;
            # the fallback is announced, and CI's testcontainers leg checks the banner.
            return Backends(
                f"local servers (testcontainers failed: {exc.reason})",
                LOCAL_DATABASE_URL,
                LOCAL_REDIS_URL,
            )
    if local:
        return Backends("local servers", LOCAL_DATABASE_URL, LOCAL_REDIS_URL)
    raise BackendUnavailable(HOW_TO)


def _start_containers() -> Backends:
    # Ryuk (the reaper) needs an image from a registry; this harness stops its own containers.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer

    postgres = PostgresContainer(
        POSTGRES_IMAGE, username="cortiware", password="cortiware", dbname="cortiware"
    )
    redis = RedisContainer(REDIS_IMAGE)
    started: list[Any] = []
    try:
        postgres.start()
        started.append(postgres)
        redis.start()
        started.append(redis)
    except Exception as exc:
        for container in started:
            with contextlib.suppress(Exception):
                container.stop()
        reason = str(exc).splitlines()[0][:160]
        raise BackendUnavailable(
            f"testcontainers could not start: {reason}. {HOW_TO}", reason
        ) from exc
    pg_url = postgres.get_connection_url(driver=None).replace("postgresql+psycopg2", "postgresql")
    host = redis.get_container_host_ip()
    port = redis.get_exposed_port(6379)
    return Backends("testcontainers", pg_url, f"redis://{host}:{port}", started)


@contextlib.contextmanager
def application_role(owner_url: str) -> Iterator[str]:
    """A login role of this run in `cortiware_app`, made as `cortiware migrate` makes it for
    the service (`ensure_application_role`), on the migrated database at `owner_url`; yields
    its URL and drops it afterwards (once nothing in the database refers to it)."""
    import asyncio

    import psycopg

    from cortiware.db.roles import ensure_application_role

    user = f"cw_app_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(owner_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    app_url = urlunsplit(parts._replace(netloc=f"{user}:{uuid.uuid4().hex}@{host}"))
    asyncio.run(ensure_application_role(owner_url, app_url))
    try:
        yield app_url
    finally:
        conninfo = owner_url.replace("postgresql+asyncpg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (user,),
            )
            conn.execute(f'REVOKE cortiware_app FROM "{user}"')
            conn.execute(f'DROP ROLE IF EXISTS "{user}"')


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """Create a uniquely named database for this run, drop it afterwards."""
    import psycopg

    name = f"cortiware_test_{uuid.uuid4().hex[:12]}"
    conninfo = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
