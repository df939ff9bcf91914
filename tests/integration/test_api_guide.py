"""The examples of `docs/api.md` run as written against `cortiware serve`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_ENV
from tests.support.servers import cortiware_serve

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_ENV = {
    "STRIPE_WEBHOOK_SECRET": "whsec_guide_examples",
    "FEDERATION_WEBHOOK_SECRETS": TEST_ENV["FEDERATION_WEBHOOK_SECRETS"],
}


def _blocks(language: str) -> str:
    return "\n".join(code for lang, code in _BLOCK.findall(GUIDE.read_text()) if lang == language)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`cortiware serve` with development defaults, as `make dev` runs it, on a free port."""
    with cortiware_serve(tmp_path_factory.mktemp("guide"), env=_ENV) as base:
        yield base


def test_curl_examples_run(served: str, tmp_path: Path) -> None:
    """The `sh` blocks (curl) succeed in order, and the CSRF example is refused with 403."""
    script = "set -euo pipefail\n" + _blocks("sh")
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CORTIWARE_URL": served, **_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "403" in result.stdout
    assert "idempotent-replayed: true" in result.stdout.lower()
    assert '"days":90' in result.stdout.replace(" ", "")


def test_python_examples_run(served: str, tmp_path: Path) -> None:
    """The `python` blocks run in order as one script, their own asserts included."""
    script = tmp_path / "guide.py"
    script.write_text(_blocks("python"))
    result = subprocess.run(
        [sys.executable, str(script)],
        env={"CORTIWARE_URL": served, **_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "remaining this window:" in result.stdout
