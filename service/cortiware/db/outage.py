"""A database that cannot be reached is a 503 with `Retry-After`, logged once per outage.

The driver reports an unreachable PostgreSQL in several shapes: a refused or timed-out
connect (`OSError`, `TimeoutError`, straight from asyncpg), a pooled connection the server
closed (SQLAlchemy's `DBAPIError` with `connection_invalidated`), the server refusing new
sessions (SQLSTATE class 08 "connection exception", 57P01-57P03 "shutting down / cannot
connect now", 53300 "too many connections"); `watch` turns every failure to connect into
`ConnectFailed`. `is_outage` recognises them; every other error stays a 500 with its
traceback. The pool's own checkout timeout (every connection busy) is overload, not an
outage: also a 503 with `Retry-After`, counted in `database.pool_exhausted`, not logged.

`DatabaseOutage` (one per process) turns the first failure of an outage into one warning line
(`database unavailable`) and the first success after it into another
(`database available again`, with the seconds it lasted): one line per outage, never a
traceback per request. Nothing is needed to recover: the engine reconnects on the next
checkout once the server answers.
"""

from __future__ import annotations

import time
from typing import Any, Final

import structlog
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from cortiware import metrics
from cortiware.errors import ServiceUnavailable, exception_handlers, problem_response

__all__ = [
    "OUTAGE_HANDLERS",
    "RETRY_AFTER_SECONDS",
    "ConnectFailed",
    "DatabaseOutage",
    "DatabaseUnavailable",
    "database_outage",
    "is_outage",
    "on_database_error",
    "watch",
]

RETRY_AFTER_SECONDS: Final = 2
"""What a 503 for an unreachable database asks the client to wait."""
_OUTAGE_SQLSTATES: Final = ("08", "57P01", "57P02", "57P03", "53300")
_log = structlog.get_logger("cortiware.db")


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached right now (503, `Retry-After`)."""

    def __init__(self, detail: str = "The database is unavailable; retry shortly.") -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _sqlstate(error: BaseException) -> str | None:
    value = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return value if isinstance(value, str) else None


def is_outage(error: BaseException) -> bool:
    """True when `error` means the database is unreachable (not a bad query or a bug)."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.DisconnectionError):
        return True  # a connection refused at checkout
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError):
            return True
        state = _sqlstate(current)
        if state is not None and state.startswith(_OUTAGE_SQLSTATES):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


class DatabaseOutage:
    """Whether this process currently sees the database as down; logs each change once."""

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since: float | None = None
        """Monotonic time of the first failure of the current outage (None: up)."""

    @property
    def is_down(self) -> bool:
        """True between an outage's first failure and the next success."""
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        """Record a failure; the first of an outage logs one line and bumps a counter."""
        metrics.counter("database.unavailable").inc()
        if self.since is None:
            self.since = time.monotonic()
            _log.warning("database unavailable", error=type(error).__name__)

    def succeeded(self) -> None:
        """Record a success; the first after an outage logs how long it lasted."""
        if self.since is not None:
            seconds = time.monotonic() - self.since
            self.since = None
            _log.warning("database available again", seconds_unavailable=round(seconds, 3))


database_outage: Final = DatabaseOutage()
"""The process's outage state (one database per process)."""


def on_database_error(request: Any, error: Exception) -> Any:
    """Exception handler: an outage is a 503 problem+json with `Retry-After`; any other
    error goes to the service's 500 handler (with its traceback)."""
    if is_outage(error):
        database_outage.failed(error)
        unavailable = DatabaseUnavailable()
        return problem_response(503, unavailable.detail, headers=unavailable.headers)
    if isinstance(error, sa_exc.TimeoutError):
        # Every pooled connection busy for the pool timeout: overload, not an outage (the
        # database answers); 503 so the client retries later, counted, not logged per request.
        metrics.counter("database.pool_exhausted").inc()
        busy = DatabaseUnavailable("The service is busy; retry shortly.")
        return problem_response(503, busy.detail, headers=busy.headers)
    return exception_handlers[Exception](request, error)


class ConnectFailed(ConnectionError):
    """Opening a database connection failed, whatever the driver said (refused, timed
    out, authentication, "not accepting connections"): the database cannot serve."""


def watch(engine: AsyncEngine) -> None:
    """Make every failure to connect an outage (`ConnectFailed`), and end the outage (one
    log line) when `engine` connects again."""
    sync_engine = engine.sync_engine

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            metrics.counter(metrics.DB_CONNECT_FAILED).inc()
            raise ConnectFailed(f"cannot connect to the database: {type(exc).__name__}") from exc

    event.listen(sync_engine, "do_connect", do_connect)
    event.listen(sync_engine, "connect", lambda *_: database_outage.succeeded())


OUTAGE_HANDLERS: Final[dict[type[Exception] | int, Any]] = {
    sa_exc.DBAPIError: on_database_error,
    sa_exc.TimeoutError: on_database_error,
    sa_exc.DisconnectionError: on_database_error,
    OSError: on_database_error,
    TimeoutError: on_database_error,
}
"""Exception handlers for the app: the errors an unreachable database raises."""
