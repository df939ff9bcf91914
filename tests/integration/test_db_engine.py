"""A PostgreSQL error never carries row values into the logs: neither the statement's bound
parameters (`hide_parameters`) nor the server's DETAIL line, which quotes the offending row."""

from __future__ import annotations

import json

import pytest
import structlog
from infra.components.database import postgres_url
from sqlalchemy import exc, text

from cortiware import metrics
from cortiware.db.engine import DB_POOL_WAIT_MS, DB_QUERY_MS, create_engine
from cortiware.logging import configure_logging
from cortiware.settings import Settings, SettingsError
from tests.conftest import TEST_ENV


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


async def test_the_url_the_pulumi_program_writes_reaches_asyncpg(database_url: str) -> None:
    """`infra` composes `DATABASE_URL` with libpq's `?sslmode=require` (what RDS with
    `rds.force_ssl` needs). asyncpg has no `sslmode` keyword: the service must translate it,
    or every connection fails with a TypeError before reaching the server."""
    written = postgres_url("cortiware_admin", "pw", "db.internal", "cortiware")
    assert written.endswith("?sslmode=require")
    assert Settings.from_env({**TEST_ENV, "DATABASE_URL": written}).database_url == written

    separator = "&" if "?" in database_url else "?"
    for mode in ("prefer", "disable"):
        engine = create_engine(f"{database_url}{separator}sslmode={mode}", pool_size=1)
        try:
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
        finally:
            await engine.dispose()

    # `require` reaches the server: it connects over TLS, or (no TLS on a test server) the
    # server refuses the upgrade. A TypeError means the parameter never got that far.
    engine = create_engine(f"{database_url}{separator}sslmode=require", pool_size=1)
    outcome = "connected"
    try:
        async with engine.connect() as connection:
            await connection.scalar(text("SELECT 1"))
    except ConnectionError as refused:
        # The engine wraps a failure to connect (an outage to the app); the driver's own
        # error, its cause, says what the server answered.
        outcome = f"{refused}: {refused.__cause__}"
    finally:
        await engine.dispose()
    assert outcome == "connected" or "SSL" in outcome, outcome


def test_database_urls_asyncpg_cannot_use_are_refused_at_start() -> None:
    """A bad port, an unknown query parameter or an unknown sslmode is a settings problem
    (one line each), not a traceback at the first connection."""
    base = "postgresql://u@db.internal:5432/app"
    for url, problem in [
        (base.replace(":5432", ":notaport"), "DATABASE_URL: the port must be a number"),
        (base + "?sslmode=on", "DATABASE_URL: sslmode must be one of disable, allow"),
        (
            base + "?connect_timeout=5",
            "DATABASE_URL: unsupported query parameter 'connect_timeout'",
        ),
    ]:
        with pytest.raises(SettingsError) as failure:
            Settings.from_env({**TEST_ENV, "DATABASE_URL": url})
        assert problem in str(failure.value)


async def test_statements_and_pool_checkouts_are_timed(database_url: str) -> None:
    """Each statement adds a `db.query_ms` observation and each pool checkout a
    `db.pool.wait_ms` one, in milliseconds."""
    engine = create_engine(database_url, pool_size=1)
    metrics.drain_observations()
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.02)"))
    finally:
        await engine.dispose()
    observed = metrics.drain_observations()
    # The dialect's own first-connect queries are timed too; the sleep is the slowest.
    assert 20 <= max(observed[DB_QUERY_MS]) < 5000
    assert len(observed[DB_POOL_WAIT_MS]) == 1
    assert 0 <= observed[DB_POOL_WAIT_MS][0] < 5000
