"""The command line: one-line problems, never a traceback, never a secret."""

from __future__ import annotations

import os
import subprocess
import sys

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
