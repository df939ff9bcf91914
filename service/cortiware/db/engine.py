"""Async engine construction for PostgreSQL (asyncpg) and the embedded SQLite default."""

from __future__ import annotations

from time import perf_counter
from typing import Any, Final

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from cortiware import metrics
from cortiware.db import outage
from cortiware.settings import async_database_url

__all__ = ["CONNECT_TIMEOUT_SECONDS", "DB_POOL_WAIT_MS", "DB_QUERY_MS", "create_engine"]

CONNECT_TIMEOUT_SECONDS = 0.8
DB_QUERY_MS: Final = "db.query_ms"
"""Observed: each statement's time in the driver (cursor execute), in milliseconds."""
DB_POOL_WAIT_MS: Final = "db.pool.wait_ms"
"""Observed: the time to get a connection from the pool (waiting for a free one, or
connecting a new one), in milliseconds."""
_QUERY_START: Final = "cortiware_query_start"


def create_engine(url: str, *, pool_size: int = 10, watch_outages: bool = True) -> AsyncEngine:
    """An async engine for `url` (a contract-style `postgresql://` or `sqlite://` URL).

    `watch_outages=False` for a database whose failures are not the service's outage (the
    read replica, which falls back to the primary: `cortiware.db.replica`)."""
    async_url = async_database_url(url)
    if async_url.startswith("sqlite"):
        engine = create_async_engine(async_url, connect_args={"timeout": 15}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        async_url,
        # A database error's text (logged with the traceback of a 500) must not carry the
        # statement's values: password hashes, token hashes, e-mails.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Not pool_pre_ping: with asyncpg it costs three round trips (BEGIN, `;`, ROLLBACK)
        # per checkout, more than the statements of a webhook delivery. `_drop_closed`
        # replaces a connection the server closed (restart, terminated backend) for free;
        # one that died silently fails its statement and SQLAlchemy invalidates the pool.
        pool_timeout=5,
        # Well under RDS Proxy's idle client timeout (1800 s by default), so the proxy never
        # closes a pooled connection behind our back.
        pool_recycle=600,
        # asyncpg's connect timeout: an unreachable database is a 503 within a second
        # (`cortiware.db.outage`), not a request hanging; a refused connect fails at once.
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": 30},
        poolclass=_TimedPool,
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    event.listen(engine.sync_engine, "before_cursor_execute", _query_started)
    event.listen(engine.sync_engine, "after_cursor_execute", _query_finished)
    if watch_outages:
        outage.watch(engine)
    return engine


class _TimedPool(AsyncAdaptedQueuePool):
    """The default async pool, timing each checkout (`db.pool.wait_ms`).

    SQLAlchemy's pool events fire after a connection was obtained, never before, so the wait
    is measured around `_do_get` (the queue pool's get-or-connect step, unchanged since 1.x).
    """

    def _do_get(self) -> ConnectionPoolEntry:
        start = perf_counter()
        try:
            return super()._do_get()
        finally:
            metrics.observe(DB_POOL_WAIT_MS, (perf_counter() - start) * 1000)


def _query_started(conn: Any, *_: Any) -> None:
    conn.info[_QUERY_START] = perf_counter()


def _query_finished(conn: Any, *_: Any) -> None:
    start = conn.info.pop(_QUERY_START, None)
    if start is not None:
        metrics.observe(DB_QUERY_MS, (perf_counter() - start) * 1000)


def _drop_closed(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pool checkout: refuse an asyncpg connection already seen closed (the pool then
    discards it and checks out another, or connects anew)."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("connection closed by the server")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()
