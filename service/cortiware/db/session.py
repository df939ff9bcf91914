"""Per-request database session with the transaction boundary at the handler.

Hand-written rather than advanced-alchemy's `SQLAlchemyPlugin`: that plugin renames its
app-state keys (`db_engine_1`, …) for every further config made in one process, so several
apps per process (tests, benchmarks) would each look their engine up under a different name.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Final

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cortiware.app_state import StateKey

__all__ = ["DB_ENGINE", "DB_SESSIONMAKER", "provide_db_session"]

DB_ENGINE: Final = StateKey("db_engine", AsyncEngine)
"""`app.state` entry of the app's engine, created in its lifespan."""
DB_SESSIONMAKER: Final[StateKey[async_sessionmaker[AsyncSession]]] = StateKey(
    "db_sessionmaker", async_sessionmaker
)
"""`app.state` entry of the session factory on `DB_ENGINE`."""


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """Yield a session; commit when the handler returns, roll back when it raises."""
    async with DB_SESSIONMAKER.get(state)() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
