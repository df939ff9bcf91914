"""`cortiware db shell`: psql for incidents, as the service's own database role.

Run inside a task through ECS Exec (the task already holds `DATABASE_URL` from Secrets
Manager, so no credential leaves AWS or appears on a command line). The session is
read-only unless `--write` is given (`SET default_transaction_read_only`, from a psqlrc:
through RDS Proxy a startup `options` parameter would pin the connection). The password
reaches psql through `PGPASSWORD` in its environment, never its arguments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit

import click

from cortiware.settings import Settings, SettingsError

__all__ = ["db_group", "libpq_environment"]

READ_ONLY_RC = "SET default_transaction_read_only = on;\n"


def _fail(message: str) -> NoReturn:
    click.echo(f"cortiware: {message}", err=True)
    sys.exit(1)


def libpq_environment(url: str) -> dict[str, str]:
    """The `PG*` variables psql reads for `postgresql://user:password@host:port/db?sslmode=`."""
    parts = urlsplit(url)
    env = {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": unquote(parts.path.lstrip("/")),
        "PGAPPNAME": "cortiware-db-shell",
    }
    for key, value in parse_qsl(parts.query):
        if key in ("sslmode", "ssl"):
            env["PGSSLMODE"] = value
    return {k: v for k, v in env.items() if v}


@click.group("db")
def db_group() -> None:
    """Database access for operators."""


@db_group.command("shell")
@click.option("--write", is_flag=True, help="A session that may change rows (default read-only).")
@click.option("-c", "--command", "sql", help="Run this SQL and exit instead of a prompt.")
def shell(write: bool, sql: str | None) -> None:
    """psql on DATABASE_URL as the service's role; read-only unless --write."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc))
    if not settings.database_url.startswith(("postgresql://", "postgres://")):
        _fail("db shell needs DATABASE_URL to be a PostgreSQL URL")
    psql = shutil.which("psql")
    if psql is None:
        _fail("psql is not installed (the service image has it)")
    with tempfile.NamedTemporaryFile("w", prefix="cortiware-psqlrc-", suffix=".sql") as rc:
        rc.write("" if write else READ_ONLY_RC)
        rc.flush()
        env = {**os.environ, **libpq_environment(settings.database_url), "PSQLRC": rc.name}
        argv = [psql, "--set", "ON_ERROR_STOP=1"]
        if sql is not None:
            # Stated again before the SQL, so a psql that skips psqlrc stays read-only too.
            argv += [] if write else ["-c", READ_ONLY_RC.strip()]
            argv += ["-c", sql]
        code = subprocess.run(argv, env=env, check=False).returncode  # noqa: S603 - psql by its resolved path; SQL is an argument, no shell
    sys.exit(code)
