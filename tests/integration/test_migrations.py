"""Alembic migrations on PostgreSQL: the only way the schema is made."""

from __future__ import annotations

from sqlalchemy import inspect

from cortiware.db import migrate
from cortiware.db.engine import create_engine


async def _indexes(url: str) -> dict[str, dict[str, tuple[list[str], bool]]]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: object) -> dict[str, dict[str, tuple[list[str], bool]]]:
                insp = inspect(sync_conn)
                out: dict[str, dict[str, tuple[list[str], bool]]] = {}
                for table in insp.get_table_names():
                    entries = {
                        ix["name"]: (list(ix["column_names"]), bool(ix["unique"]))
                        for ix in insp.get_indexes(table)
                    }
                    for uq in insp.get_unique_constraints(table):
                        entries[uq["name"]] = (list(uq["column_names"]), True)
                    out[table] = entries
                return out

            return await conn.run_sync(read)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    """Upgrading from empty, downgrading to base and upgrading again all succeed."""
    assert await migrate.current_revision(empty_database_url) is None
    await migrate.upgrade(empty_database_url)
    assert await migrate.current_revision(empty_database_url) == migrate.head_revision()
    await migrate.upgrade(empty_database_url)  # safe to run twice
    await migrate.downgrade(empty_database_url)
    assert await migrate.current_revision(empty_database_url) is None
    assert set(await _indexes(empty_database_url)) <= {"alembic_version"}
    await migrate.upgrade(empty_database_url)
    assert await migrate.current_revision(empty_database_url) == migrate.head_revision()


async def test_seed_indexes_exist(database_url: str) -> None:
    """The indexes the seed names exist with the right columns and uniqueness."""
    tables = await _indexes(database_url)

    def has(table: str, columns: list[str], *, unique: bool = False) -> bool:
        return any(
            cols == columns and (is_unique or not unique)
            for cols, is_unique in tables[table].values()
        )

    assert has("audit_log", ["entity", "created_at"])
    assert has("audit_log", ["organization_id", "created_at"])
    assert has("activity", ["action", "created_at"])
    assert has("subscriptions", ["organization_id", "status"])
    assert has("onboarding_invites", ["token_hash"], unique=True)
    assert has("coupons", ["code"], unique=True)
    assert has("plans", ["code"], unique=True)
    assert has("webhook_events", ["source", "event_id"], unique=True)
