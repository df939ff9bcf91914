"""Read sessions fall back to the primary while the replica is unreachable, then retry it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from cortiware import metrics
from cortiware.db.engine import create_engine
from cortiware.db.replica import REPLICA_FALLBACK, ReadSessions
from tests.support.servers import free_port


async def test_an_unreachable_replica_is_retried_only_after_the_back_off() -> None:
    """A refused replica sends reads to the primary and is not tried again until
    `retry_after` seconds have passed; each attempt that failed is counted once."""
    primary = create_engine("sqlite:///:memory:")
    replica = create_engine(
        f"postgresql://postgres@127.0.0.1:{free_port()}/none", watch_outages=False
    )
    now = [100.0]
    reads = ReadSessions(
        async_sessionmaker(primary), replica, retry_after=30.0, clock=lambda: now[0]
    )
    before = metrics.snapshot().get(REPLICA_FALLBACK, 0)
    failed_connects = metrics.snapshot().get(metrics.DB_CONNECT_FAILED, 0)
    try:
        for advance, tried in ((0.0, 1), (29.0, 1), (2.0, 2)):
            now[0] += advance
            async with reads.session() as session:
                assert await session.scalar(text("SELECT 1")) == 1  # the primary answered
            assert metrics.snapshot()[REPLICA_FALLBACK] == before + tried
        assert not reads.uses_replica
        # A replica's failure is not the primary's: the paging counter did not move.
        assert metrics.snapshot().get(metrics.DB_CONNECT_FAILED, 0) == failed_connects
    finally:
        await primary.dispose()
        await replica.dispose()


async def test_without_a_replica_reads_use_the_primary() -> None:
    """No DATABASE_REPLICA_URL: every read session is the primary's."""
    primary = create_engine("sqlite:///:memory:")
    reads = ReadSessions(async_sessionmaker(primary), None)
    try:
        assert not reads.uses_replica
        async with reads.session() as session:
            assert await session.scalar(text("SELECT 2")) == 2
    finally:
        await primary.dispose()
