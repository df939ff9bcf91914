"""`cortiware serve` with zero configuration, checked by `cortiware smoke` over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import cortiware_serve, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `cortiware serve` process on a free port, with an empty environment, in a temp dir."""
    with cortiware_serve(tmp_path_factory.mktemp("serve")) as base:
        yield base


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
