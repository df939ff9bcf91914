"""`transaction()`: the one transaction owner runs after-commit work only after a commit."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.models import Organization
from cortiware.db.session import after_commit, transaction

Sessions = async_sessionmaker[AsyncSession]


async def test_after_commit_work_sees_the_committed_rows(sessions: Sessions) -> None:
    """Callbacks run once, in order, after the commit: another session already sees the row."""
    name = f"tx-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[int, bool]] = []

    def visible(step: int) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            async with sessions() as other:
                found = await other.scalar(select(Organization.id).where(Organization.name == name))
            seen.append((step, found is not None))

        return check

    async with transaction(sessions) as session:
        session.add(Organization(name=name))
        after_commit(session, visible(1))
        after_commit(session, visible(2))
        await session.flush()
        assert seen == []
    assert seen == [(1, True), (2, True)]


async def test_rollback_discards_after_commit_work(sessions: Sessions) -> None:
    """A block that raises rolls back and runs none of its after-commit callbacks."""
    ran: list[str] = []

    async def note() -> None:
        ran.append("ran")

    async def failing() -> None:
        async with transaction(sessions) as session:
            session.add(Organization(name=f"tx-{uuid.uuid4().hex[:8]}"))
            after_commit(session, note)
            raise LookupError

    with pytest.raises(LookupError):
        await failing()
    assert ran == []
