"""The engine never puts a statement's bound values into an error's text (it reaches logs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc, text

from cortiware.db.engine import create_engine


async def test_database_errors_do_not_carry_the_statement_values(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/e.sqlite3")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
            with pytest.raises(exc.IntegrityError) as failure:
                await connection.execute(
                    text("INSERT INTO t (n) VALUES (:n), (NULL)"), {"n": "argon2-hash-value"}
                )
    finally:
        await engine.dispose()
    assert "argon2-hash-value" not in str(failure.value)
    assert "parameters hidden" in str(failure.value)
