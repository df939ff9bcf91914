"""The command line: one-line problems, never a traceback, never a secret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import click
import pytest
import redis.exceptions
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError, StatementError

from cortiware.billing import cli as billing_cli
from cortiware.billing.cli import parse_since
from cortiware.cli import dependency_problem, main
from tests.unit.test_settings import STRONG


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "DATABASE", "REDIS"))}
    return subprocess.run(
        [sys.executable, "-m", "cortiware.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_serve_with_weak_secrets_exits_naming_each_problem() -> None:
    """`APP_ENV=production cortiware serve` with a short secret exits 1 naming it, no value."""
    env = dict(STRONG, SESSION_SECRET="tooshort-value", ONBOARDING_TOKEN_SECRET="x" * 10)
    del env["STRIPE_SECRET_KEY"]
    result = _run("serve", env=env)
    assert result.returncode == 1
    assert "SESSION_SECRET" in result.stderr
    assert "ONBOARDING_TOKEN_SECRET" in result.stderr
    assert "STRIPE_SECRET_KEY" in result.stderr
    assert "tooshort-value" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_config_check_prints_table_without_values() -> None:
    """`cortiware config check` lists every variable as required/set and prints no secret."""
    result = _run("config", "check", env=STRONG)
    assert result.returncode == 0, result.stderr
    assert "SESSION_SECRET" in result.stdout
    assert "required  set" in result.stdout
    for value in STRONG.values():
        if len(value) > 20:
            assert value not in result.stdout


def test_config_check_fails_listing_all_problems() -> None:
    """`cortiware config check` exits 1 and lists every problem at once."""
    result = _run("config", "check", env={"APP_ENV": "staging"})
    assert result.returncode == 1
    assert "problem(s)" in result.stderr
    assert result.stderr.count("required in staging") >= 10


@pytest.mark.parametrize(
    ("since", "problem"),
    [
        ("99999999999d", "a duration must be at most 3650 days"),
        ("3651d", "a duration must be at most 3650 days"),
        ("9999-12-31T23:59:59-23:00", "outside the range UTC can express"),
        ("0001-01-01T00:00:00+01:00", "outside the range UTC can express"),
        ("yesterday", "use an ISO 8601 date/time"),
    ],
)
def test_replay_refuses_an_unusable_since_in_one_line(since: str, problem: str) -> None:
    """`cortiware stripe replay --since` out of range exits 1 with one line, no traceback."""
    result = _run("stripe", "replay", "--since", since, env={})
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("cortiware: --since: ")
    assert problem in line


def test_parse_since_converts_offsets_to_utc_and_bounds_durations() -> None:
    """An offset time comes back in UTC; ten years is the longest duration."""
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert parse_since("2026-01-02T03:04:05+02:00") == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert parse_since("2026-01-02T03:04:05+02:00").tzinfo is UTC
    assert parse_since("3650d", now=now) == now - timedelta(days=3650)
    assert parse_since("87600h", now=now) == now - timedelta(days=3650)
    with pytest.raises(click.BadParameter):
        parse_since("87601h", now=now)


def test_prune_dry_run_refuses_a_bad_archive_url_like_a_real_run() -> None:
    """`audit prune --dry-run --archive-to ftp://x` is refused exactly as without --dry-run."""
    runner = CliRunner()
    for args in (["--dry-run"], []):
        result = runner.invoke(
            main, ["audit", "prune", *args, "--archive-to", "ftp://x"], env={"APP_ENV": "test"}
        )
        assert result.exit_code == 1
        assert result.output == (
            "cortiware: --archive-to must be file:///path or s3://bucket/prefix\n"
        )


def _statement_error() -> StatementError:
    try:
        raise OverflowError("date value out of range")
    except OverflowError as exc:
        return StatementError(
            "(builtins.OverflowError) date value out of range",
            "SELECT id FROM webhook_events WHERE received_at >= $1",
            {"received_at_1": "9999-12-31"},
            exc,
        )


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (_statement_error(), "database error: date value out of range"),
        (
            OperationalError("SELECT 1", {}, OSError("disk I/O error")),
            "database error: disk I/O error",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "cannot resolve a host name: Name or service not known",
        ),
        (TimeoutError(), "timed out reaching a dependency"),
        (
            ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5439)"),
            "cannot reach a dependency: Connect call failed ('127.0.0.1', 5439)",
        ),
        (
            ConnectionError("cannot use postgresql://app:hunter2-secret@db/x"),
            "cannot reach a dependency: cannot use postgresql://app:***@db/x",
        ),
        (
            redis.exceptions.ConnectionError("Error 111 connecting"),
            "Redis error: Error 111 connecting",
        ),
    ],
)
def test_dependency_errors_become_one_line_without_sql_or_secrets(
    error: Exception, line: str
) -> None:
    """Driver, SQLAlchemy and network errors read as one line: no SQL, parameters or password."""
    assert dependency_problem(error) == line


def test_a_bug_is_not_mistaken_for_a_dependency_failure() -> None:
    """Anything that is not a database or network failure propagates (it is a bug)."""
    assert dependency_problem(ValueError("bug")) is None
    assert dependency_problem(KeyError("bug")) is None


def test_any_command_reports_a_dependency_failure_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection failure outside `run_async` (here making the Stripe client) is one line."""

    def refuse(settings: object) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(billing_cli, "make_stripe_client", refuse)
    result = CliRunner().invoke(main, ["stripe", "setup"], env={"APP_ENV": "test"})
    assert result.exit_code == 1
    assert result.output == "cortiware: cannot reach a dependency: Connection refused\n"


def test_only_dependency_failures_become_one_line() -> None:
    """Driver and network errors are one line; SQLAlchemy's own errors and file errors are
    not dependency failures (they keep their traceback or their own message)."""
    from sqlalchemy.exc import InvalidRequestError

    from cortiware.cli import dependency_problem

    assert dependency_problem(ConnectionRefusedError(111, "Connection refused")) == (
        "cannot reach a dependency: Connection refused"
    )
    assert dependency_problem(InvalidRequestError("a bug")) is None
    assert dependency_problem(FileNotFoundError(2, "No such file", "/x")) is None
    assert dependency_problem(PermissionError(13, "Permission denied")) is None
