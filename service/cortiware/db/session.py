"""Per-request database session with the transaction boundary at the handler.

`transaction(sessionmaker)` is the one place a transaction is committed: the request's
session (`provide_db_session`), a page's form command, a CLI command. Work that must wait
for the commit (dropping cached copies, so a concurrent reader cannot cache the pre-commit
state again) is registered with `after_commit(session, callback)` and runs only once the
commit succeeded; a rollback discards it.

Hand-written rather than advanced-alchemy's `SQLAlchemyPlugin`: that plugin renames its
app-state keys (`db_engine_1`, …) for every further config made in one process, so several
apps per process (tests, benchmarks) would each look their engine up under a different name.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cortiware.app_state import StateKey

__all__ = [
    "DB_ENGINE",
    "DB_SESSIONMAKER",
    "after_commit",
    "provide_db_session",
    "run_after_commit",
    "transaction",
]

DB_ENGINE: Final = StateKey("db_engine", AsyncEngine)
"""`app.state` entry of the app's engine, created in its lifespan."""
DB_SESSIONMAKER: Final[StateKey[async_sessionmaker[AsyncSession]]] = StateKey(
    "db_sessionmaker", async_sessionmaker
)
"""`app.state` entry of the session factory on `DB_ENGINE`."""

_AFTER_COMMIT: Final = "cortiware_after_commit"
"""`session.info` key of the callbacks waiting for the commit."""


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the transaction of `session` has committed (never on rollback)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    """Run (and forget) the callbacks registered on `session`; call right after a commit."""
    callbacks: list[Callable[[], Awaitable[None]]] = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        await callback()


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work commits when the block ends and rolls back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            await session.rollback()
            raise
        await session.commit()
        await run_after_commit(session)


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """Yield a session; commit when the handler returns, roll back when it raises."""
    async with transaction(DB_SESSIONMAKER.get(state)) as session:
        yield session
