"""Audit retention: the effective number of days, and pruning rows older than that."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.models import AuditEntry, MonetizationConfig

__all__ = [
    "MAX_RETENTION_DAYS",
    "MIN_RETENTION_DAYS",
    "PruneResult",
    "effective_retention_days",
    "prune",
]

MIN_RETENTION_DAYS: Final = 1
MAX_RETENTION_DAYS: Final = 3650
DEFAULT_BATCH_SIZE: Final = 1000

ArchiveBatch = Callable[[Sequence[AuditEntry]], Awaitable[None]]


async def effective_retention_days(session: AsyncSession, default_days: int) -> int:
    """The days stored through the API, else `default_days` (AUDIT_RETENTION_DAYS)."""
    stored = await session.scalar(
        select(MonetizationConfig.audit_retention_days).where(MonetizationConfig.id == 1)
    )
    return stored if stored is not None else default_days


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune run found and did."""

    cutoff: datetime
    """Rows created before this instant are past retention."""
    matched: int
    """Rows past retention when the run started (dry run) or deleted (otherwise)."""
    deleted: int
    batches: int


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    days: int,
    dry_run: bool = False,
    archive: ArchiveBatch | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
) -> PruneResult:
    """Delete audit rows older than `days`, `batch_size` rows per transaction.

    Each batch is handed to `archive` before it is deleted, in the same transaction: if
    archiving raises, that batch stays in the database and the error propagates.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    if dry_run:
        async with sessionmaker() as session:
            count = await session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.created_at < cutoff)
            )
        return PruneResult(cutoff=cutoff, matched=count or 0, deleted=0, batches=0)
    deleted = batches = 0
    while True:
        async with sessionmaker() as session, session.begin():
            rows = list(
                (
                    await session.scalars(
                        select(AuditEntry)
                        .where(AuditEntry.created_at < cutoff)
                        .order_by(AuditEntry.id)
                        .limit(batch_size)
                    )
                ).all()
            )
            if not rows:
                break
            if archive is not None:
                await archive(rows)
            await session.execute(delete(AuditEntry).where(AuditEntry.id.in_([r.id for r in rows])))
        deleted += len(rows)
        batches += 1
        if len(rows) < batch_size:
            break
    return PruneResult(cutoff=cutoff, matched=deleted, deleted=deleted, batches=batches)
