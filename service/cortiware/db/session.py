"""Per-request database session with the transaction boundary at the handler.

Hand-written rather than advanced-alchemy's `SQLAlchemyPlugin`: that plugin renames its
app-state keys (`db_engine_1`, …) for every further config made in one process, so several
apps per process (tests, benchmarks) would each look their engine up under a different name.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["provide_db_session"]


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """Yield a session; commit when the handler returns, roll back when it raises."""
    sessionmaker: async_sessionmaker[AsyncSession] = state.db_sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
