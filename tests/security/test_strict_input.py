"""JSON bodies and query parameters are taken as exactly as the published schema types them:
a number as text, a number for a boolean or a date-time is a 400 naming the field, where
Litestar's lenient conversion would accept it. A number with no fractional part is an
integer (JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from cortiware.middleware.strict_input import refuse_loose_input
from tests.support.auth import login_staff

Client = AsyncTestClient[Litestar]
RETENTION = "/api/provider/audit/retention"
AUDIT = "/api/provider/audit"


def _refused(response: Any, key: str, source: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {"key": key, "source": source} in [
        {k: e.get(k) for k in ("key", "source")} for e in response.json()["errors"]
    ], response.json()


@pytest.mark.parametrize("days", ['"30"', '"3e1"', "true"])
async def test_a_body_integer_must_be_a_json_number(client: Client, days: str) -> None:
    """`"30"`, `"3e1"` and `true` for the integer `days` are 400 naming `days`."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    response = await client.put(
        RETENTION, content=f'{{"days": {days}}}', headers={"Content-Type": "application/json"}
    )
    _refused(response, "days", "body")


@pytest.mark.parametrize("days", ["30", "30.0", "3e1"])
async def test_exact_input_still_passes(client: Client, days: str) -> None:
    """An integral JSON number body (`30`, `30.0`, `3e1`) and integer and date-time query
    values in their own syntax pass."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    response = await client.put(
        RETENTION, content=f'{{"days": {days}}}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"days": 30}
    query = {"limit": "5", "until": "2026-01-01T00:00:00Z", "since": "2025-01-01T00:00:00+01:00"}
    assert (await client.get(AUDIT, params=query)).status_code == 200
    assert (await client.get(AUDIT, params={"limit": "5.0"})).status_code == 200


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ({"until": "0.5"}, "until"),
        ({"since": "1700000000"}, "since"),
    ],
)
async def test_a_query_value_must_have_the_schemas_syntax(
    client: Client, query: dict[str, str], key: str
) -> None:
    """A number for a date-time query parameter is 400 naming the parameter."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    _refused(await client.get(AUDIT, params=query), key, "query")


async def test_anonymous_gets_401_before_any_input_check(client: Client) -> None:
    """The guard answers first: loose input from an anonymous caller is 401, not 400."""
    assert (await client.get(AUDIT, params={"until": "0.5"})).status_code == 401


def test_no_layer_replaces_the_strict_input_hook(app: Litestar) -> None:
    """Every handler resolves to the app's `before_request` hook (a layer's own would
    replace it: Litestar keeps only the closest)."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                hook = handler.resolve_before_request()
                assert hook is not None, route.path
                assert getattr(hook, "func", hook) is refuse_loose_input or (
                    getattr(hook, "__wrapped__", None) is refuse_loose_input
                ), (route.path, hook)
