"""`serve_app`: the app as servers run it freezes its start-up heap out of the garbage
collector; `create_app`, which tests call many times in one process, does not."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from cortiware import app as app_module
from tests.conftest import TEST_ENV


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[None]:
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/served.sqlite3")
    monkeypatch.delenv("REDIS_URL", raising=False)
    gc.unfreeze()
    yield
    gc.unfreeze()  # this test process keeps collecting what the app left


def test_a_served_app_freezes_the_heap_once_started(environment: None) -> None:
    """After start-up the start-up heap is frozen, and requests are served as before."""
    served = app_module.serve_app()
    assert gc.get_freeze_count() == 0
    with TestClient(served) as client:
        frozen = gc.get_freeze_count()
        assert client.get("/api/health/live").json() == {"status": "ok"}
    assert frozen > 10_000  # the modules, the app, its routes and schemas


def test_the_module_app_is_the_served_one(environment: None) -> None:
    """`cortiware.app:app` (the contract's import path) is built by `serve_app`."""
    assert _freezes(app_module.app)


def test_apps_built_for_tests_freeze_nothing(environment: None) -> None:
    """`create_app` leaves the collector alone."""
    with TestClient(app_module.create_app()):
        assert gc.get_freeze_count() == 0


def _freezes(app: object) -> bool:
    return app_module._freeze_startup_heap in getattr(app, "on_startup", [])
