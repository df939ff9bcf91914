"""`cortiware serve` with zero configuration, checked by `cortiware smoke` over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import cortiware_serve, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `cortiware serve` process on a free port, with only `APP_VERSION`, in a temp dir."""
    with cortiware_serve(tmp_path_factory.mktemp("serve"), {"APP_VERSION": "r2026.12"}) as base:
        yield base


def smoke(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """`cortiware smoke ARGS` as an operator runs it, with SMOKE_PASSWORD when given."""
    env = {k: v for k, v in os.environ.items() if k != "SMOKE_PASSWORD"}
    if password is not None:
        env["SMOKE_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "cortiware.cli", "smoke", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_zero_configuration_serves_healthy(served: str) -> None:
    """With no environment at all the service migrates its SQLite file and answers healthy."""
    response = httpx.get(f"{served}/api/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert response.json()["checks"]["redis"] == "memory"


def test_smoke_command_passes_against_a_running_service(served: str) -> None:
    """`cortiware smoke --base-url` exits 0 and reports every check passing."""
    result = subprocess.run(
        [sys.executable, "-m", "cortiware.cli", "smoke", "--base-url", served],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_smoke_command_fails_against_nothing() -> None:
    """`cortiware smoke` against a closed port exits 1 with one line per failed check."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cortiware.cli",
            "smoke",
            "--base-url",
            f"http://127.0.0.1:{free_port()}",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "smoke checks failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_smoke_checks_the_expected_version_and_a_login(served: str) -> None:
    """With the deployed tag and a staff login, every check passes, the login's included."""
    result = smoke(
        "--base-url",
        served,
        "--expect-version",
        "r2026.12",
        "--username",
        "provider",
        password="provider-dev-password",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("readiness", "health", "onboarding", "provider page", "owner page", "login"):
        assert f"PASS  {name}" in result.stdout
    assert "version r2026.12" in result.stdout


def test_smoke_fails_on_another_version(served: str) -> None:
    """A deployment still serving the previous tag fails the health check by name."""
    result = smoke("--base-url", served, "--expect-version", "r2026.11")
    assert result.returncode == 1
    assert "FAIL  health" in result.stdout
    assert "expected 'r2026.11'" in result.stdout


def test_smoke_fails_on_a_wrong_password(served: str) -> None:
    """A refused login fails the login check, and the password is never printed."""
    result = smoke("--base-url", served, "--username", "provider", password="not-the-password")
    assert result.returncode == 1
    assert "FAIL  login" in result.stdout
    assert "not-the-password" not in result.stdout + result.stderr


def test_smoke_needs_the_password_in_the_environment(served: str) -> None:
    """`--username` without SMOKE_PASSWORD is a one-line usage error."""
    result = smoke("--base-url", served, "--username", "provider")
    assert result.returncode == 1
    assert result.stderr.strip() == "cortiware: --username needs its password in SMOKE_PASSWORD"


def test_an_idle_connection_outlives_the_load_balancers_idle_timeout(served: str) -> None:
    """The service keeps an idle keep-alive connection open longer than the load balancer
    keeps its own (60 s), so the balancer, never the service, closes it. uvicorn's default
    (5 s) closed connections the client was about to reuse: a request written as the server
    closed got a reset (a 502 behind the ALB, a connection error in the onboarding load run).
    Checked here past the old 5 s, on one real connection."""
    # httpx drops its own idle connections after 5 s unless told otherwise.
    limits = httpx.Limits(keepalive_expiry=60)
    with httpx.Client(base_url=served, timeout=5, limits=limits) as client:
        assert client.get("/api/health/live").status_code == 200
        first = _connection_id(client)
        time.sleep(6.5)
        assert client.get("/api/health/live").status_code == 200
        assert _connection_id(client) == first, "the service closed the idle connection"


def _connection_id(client: httpx.Client) -> int:
    """Identity of the pool's one open connection to the server."""
    connections = client._transport._pool.connections  # type: ignore[attr-defined]
    (connection,) = connections
    return id(connection)
