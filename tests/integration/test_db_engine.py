"""A PostgreSQL error never carries row values into the logs: neither the statement's bound
parameters (`hide_parameters`) nor the server's DETAIL line, which quotes the offending row."""

from __future__ import annotations

import json

import pytest
import structlog
from sqlalchemy import exc, text

from cortiware.db.engine import create_engine
from cortiware.logging import configure_logging


async def test_a_unique_violation_is_logged_without_the_values(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "argon2-" + "hash-value"  # not spelled out on a line the traceback quotes
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TEMP TABLE t (secret TEXT UNIQUE)"))
            insert = text("INSERT INTO t (secret) VALUES (:secret)")
            await connection.execute(insert, {"secret": secret})
            with pytest.raises(exc.IntegrityError) as failure:
                await connection.execute(insert, {"secret": secret})
    finally:
        await engine.dispose()
    assert "parameters hidden" in str(failure.value)
    assert secret in str(failure.value), "PostgreSQL's DETAIL quotes the value"

    configure_logging()
    log = structlog.get_logger("t")
    log.error("unhandled_exception", exc_info=failure.value)
    log.warning("batch failed", error=repr(failure.value))
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert "UniqueViolationError" in json.loads(lines[0])["exception"]
    assert "DETAIL: [hidden]" in json.loads(lines[1])["error"]
    assert not any(secret in line for line in lines)
