"""Every command against a database that refuses it: one line naming why, no password."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest

from tests.conftest import TEST_ENV
from tests.integration.backends import Backends

PASSWORD = "pw-that-must-never-be-printed"
COMMANDS = [
    ("migrate",),
    ("seed",),
    ("stripe", "replay", "--since", "24h"),
    ("audit", "prune", "--dry-run"),
]


def _url(backends: Backends, *, user: str, database: str, password: str = PASSWORD) -> str:
    server = urlsplit(backends.admin_database_url)
    return f"postgresql://{user}:{password}@{server.hostname}:{server.port or 5432}/{database}"


def _run(args: tuple[str, ...], database_url: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "DATABASE", "REDIS"))}
    return subprocess.run(
        [sys.executable, "-m", "cortiware.cli", *args],
        env={**clean, **TEST_ENV, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_missing_database_is_one_line(backends: Backends, args: tuple[str, ...]) -> None:
    """A database that does not exist is named in one line; the password is not printed."""
    name = f"cw_missing_{uuid.uuid4().hex[:8]}"
    server = urlsplit(backends.admin_database_url)
    # The server's real credentials (a testcontainers server checks passwords; the local
    # one trusts): only the database is missing.
    password = server.password or PASSWORD
    url = _url(backends, user=server.username or "postgres", database=name, password=password)
    result = _run(args, url)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f'cortiware: database error: database "{name}" does not exist'
    ]
    printed = result.stdout + result.stderr
    assert f":{password}@" not in printed  # the URL's credentials never appear
    # (A container's password, e.g. `cortiware`, can be an ordinary word of the message.)
    assert PASSWORD not in printed


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_unknown_role_is_one_line(backends: Backends, args: tuple[str, ...]) -> None:
    """A role that does not exist is refused in one line (PostgreSQL's words, no password)."""
    role = f"cw_nobody_{uuid.uuid4().hex[:8]}"
    result = _run(args, _url(backends, user=role, database="postgres"))
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("cortiware: database error: ")
    assert role in line  # "role … does not exist" or "password authentication failed for user …"
    assert PASSWORD not in result.stdout + result.stderr
