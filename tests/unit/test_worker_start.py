"""`cortiware serve --workers N` gives each worker time to import the app before uvicorn's
supervisor counts it as hung (a fake `cortiware.serving.run`, uvicorn's `run` with the
service's sockets, records the arguments)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from cortiware import cli
from cortiware.cli import main
from tests.conftest import TEST_ENV


def test_serve_gives_workers_a_start_up_margin_over_uvicorns_5_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker health-check timeout is well above the app's import time on a loaded
    host (over 10 s measured), so a cold multi-worker start does not crash-loop."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "run_server", lambda *_args, **kwargs: calls.append(kwargs))
    env = {**TEST_ENV, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    result = CliRunner().invoke(main, ["serve", "--workers", "2"], env=env)
    assert result.exit_code == 0, result.output
    assert calls[0]["workers"] == 2
    assert calls[0]["timeout_worker_healthcheck"] >= 30
