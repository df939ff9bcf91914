"""Security suite fixtures: the integration fixtures (real PostgreSQL and Redis), reused."""

from __future__ import annotations

import pytest

# Re-exported so pytest finds them here; they are the integration layer's own fixtures.
from tests.integration.conftest import (  # noqa: F401 - fixtures
    app,
    backends,
    client,
    database_url,
    pg_settings,
    redis_prefix,
    redis_url,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/security talks to real backends: the `integration` marker."""
    for item in items:
        if "tests/security/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
