"""Alembic, driven from code: `cortiware migrate` and the test harness both use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from cortiware.db.engine import create_engine

__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`; a no-op when already there."""
    await _run(url, lambda conn: command.upgrade(alembic_config(conn), revision))


async def downgrade(url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    await _run(url, lambda conn: command.downgrade(alembic_config(conn), revision))


async def current_revision(url: str) -> str | None:
    """The revision the database is at, or None when unmigrated."""
    result: list[str | None] = []

    def read(conn: Connection) -> None:
        result.append(MigrationContext.configure(conn).get_current_revision())

    await _run(url, read)
    return result[0]


async def _run(url: str, fn: object) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(fn)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
