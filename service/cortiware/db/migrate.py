"""Alembic, driven from code: `cortiware migrate` and the test harness both use this."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from cortiware.db.engine import create_engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported by the functions that use it, not here: the app imports this module
# (the developer portal shows the head revision) and importing Alembic took 0.75-0.86 s of
# the app's 11-14 s import on a loaded 2-vCPU host (`python -X importtime -c "import
# cortiware.app"`), about 7 %, paid by every worker at start for a page seldom opened.

__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, optionally bound to a connection."""
    from alembic.config import Config  # noqa: PLC0415  (lazy: see the module comment)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415  (lazy: see the module comment)

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`; a no-op when already there."""
    from alembic import command  # noqa: PLC0415  (lazy: see the module comment)

    await _run(url, lambda conn: command.upgrade(alembic_config(conn), revision))


async def downgrade(url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    from alembic import command  # noqa: PLC0415  (lazy: see the module comment)

    await _run(url, lambda conn: command.downgrade(alembic_config(conn), revision))


async def current_revision(url: str) -> str | None:
    """The revision the database is at, or None when unmigrated."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415  (lazy: see the module comment)

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
