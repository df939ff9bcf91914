"""`cortiware serve` with zero configuration, checked by `cortiware smoke` over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `cortiware serve` process on a free port, with an empty environment, in a temp dir."""
    workdir = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    log_path = Path(workdir) / "serve.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cortiware.cli", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None:
                log_file.close()
                pytest.fail(f"serve exited early:\n{log_path.read_text()}")
            time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


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
