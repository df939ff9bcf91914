"""`cortiware config check` and `serve` refuse a production configuration holding test or
development values, naming each variable and printing no value (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cortiware.settings import ALL_VARIABLES
from tests.unit.test_settings import STRONG

DEV = {row.name: row.dev_default for _, row in ALL_VARIABLES if row.dev_default}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    return subprocess.run(
        [sys.executable, "-m", "cortiware.cli", *args],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", [("config", "check"), ("serve",)])
def test_production_refuses_test_keys_and_development_secrets(command: tuple[str, ...]) -> None:
    """Test-mode Stripe keys and the published development secrets stop production."""
    env = dict(
        STRONG,
        STRIPE_SECRET_KEY="sk_test_" + "z" * 24,
        STRIPE_PUBLISHABLE_KEY="pk_test_" + "z" * 24,
        ONBOARDING_TOKEN_SECRET=str(DEV["ONBOARDING_TOKEN_SECRET"]),
        SESSION_SECRET=str(DEV["SESSION_SECRET"]),
    )
    result = _run(*command, env=env)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    for name in (
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "ONBOARDING_TOKEN_SECRET",
        "SESSION_SECRET",
    ):
        assert f"{name}: " in result.stderr, name
    assert "configuration OK" not in output
    assert "z" * 24 not in output
    assert str(DEV["SESSION_SECRET"]) not in output
    assert "Traceback" not in output


def test_production_with_live_keys_and_own_secrets_is_ok() -> None:
    """The same command passes once the values are production's own."""
    result = _run("config", "check", env=STRONG)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
