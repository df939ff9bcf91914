"""Reads that may come from the read replica (`DATABASE_REPLICA_URL`), else the primary.

Accountant reports, CSV exports and audit listings read many rows and write none; on a
replica they take no CPU or buffer cache from the primary's writes. They may trail the
primary by the replica's lag (seconds; the `rds-replica-lag` alarm watches it), which these
pages tolerate. Without `DATABASE_REPLICA_URL`, or while the replica cannot be reached, the
same reads go to the primary:

- a failure to connect to the replica (refused, timed out, "cannot connect now") sends this
  read to the primary, logs one warning and counts `db.replica.fallback`; for the next
  `retry_after` seconds reads go straight to the primary (no connect timeout paid per
  request), then the replica is tried again;
- an error after the connection was made (a query failing on a replica that vanished
  mid-read) is the request's error, as on the primary.

The replica's engine is not watched for outages (`cortiware.db.outage`): a replica that is
down is not a database outage, the primary serves, and `db.connect_failed` (which pages)
counts the primary only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import structlog
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.app_state import StateKey
from cortiware.db.outage import is_outage
from cortiware.db.session import transaction

__all__ = [
    "READ_SESSIONS",
    "REPLICA_FALLBACK",
    "ReadSessions",
    "provide_read_session",
]

REPLICA_FALLBACK: Final = "db.replica.fallback"
"""Counter: reads sent to the primary because the replica could not be reached."""
_log = structlog.get_logger("cortiware.db")


class ReadSessions:
    """Read-only sessions on the replica while it answers, else on the primary."""

    __slots__ = ("_clock", "_primary", "_replica", "_retry_at", "retry_after")

    def __init__(
        self,
        primary: async_sessionmaker[AsyncSession],
        replica: AsyncEngine | None,
        *,
        retry_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._replica = replica
        self.retry_after = retry_after
        """Seconds reads stay on the primary after the replica failed to connect."""
        self._retry_at = 0.0
        self._clock = clock

    @property
    def uses_replica(self) -> bool:
        """True when a replica is configured and not in its back-off after a failure."""
        return self._replica is not None and self._clock() >= self._retry_at

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads: on the replica when it connects, else on the primary."""
        connection = await self._replica_connection()
        if connection is None:
            async with transaction(self._primary) as session:
                yield session
            return
        try:
            async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                yield session
        finally:
            await connection.close()

    async def _replica_connection(self) -> AsyncConnection | None:
        if self._replica is None or not self.uses_replica:
            return None
        try:
            return await self._replica.connect()
        except Exception as error:
            if not is_outage(error):
                raise
            self._retry_at = self._clock() + self.retry_after
            metrics.counter(REPLICA_FALLBACK).inc()
            _log.warning(
                "read replica unavailable: reading from the primary",
                error=type(error).__name__,
                retry_in_seconds=self.retry_after,
            )
            return None


READ_SESSIONS: Final = StateKey("db_read_sessions", ReadSessions)
"""`app.state` entry of the app's `ReadSessions`, created in its lifespan."""


async def provide_read_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """DI provider: a session for reports, exports and listings (replica when configured)."""
    async with READ_SESSIONS.get(state).session() as session:
        yield session
