"""HEAD and OPTIONS on every route of the live table: HEAD answers as GET without a body
(RFC 9110 §9.3.2), and OPTIONS and 405 answers list every method, HEAD included, to anyone."""

from __future__ import annotations

import re
import uuid

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from tests.support.auth import login_staff

Client = AsyncTestClient[Litestar]
_PARAM = re.compile(r"\{(\w+)(:\w+)?\}")


def _fill(path: str) -> str:
    """A concrete path for a route template (parameters that name nothing: 404s are fine)."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) == "file_path":
            return "site.css"
        return str(uuid.uuid4()) if match.group(2) == ":uuid" else "does-not-exist"

    return _PARAM.sub(value, path)


def _routes(app: Litestar) -> list[tuple[str, set[str]]]:
    """(concrete path, methods with a handler) of every HTTP route but the OpenAPI reader's."""
    return [
        (_fill(route.path), set(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute) and not route.path.startswith("/api/docs/")
    ]


def _allowed(methods: set[str]) -> set[str]:
    return methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())


def _allow(header: str | None) -> set[str]:
    return {m.strip() for m in (header or "").split(",") if m.strip()}


async def test_head_answers_every_get_route_as_get_without_a_body(
    app: Litestar, client: Client
) -> None:
    """As the provider, HEAD on every GET route answers GET's status and content type, and
    no body; on stable routes the same Content-Length."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    checked = 0
    for path, methods in _routes(app):
        if "GET" not in methods or "HEAD" in methods:
            continue  # Litestar's own HEAD handlers (static files) are theirs
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
        assert head.content == b"", path
        checked += 1
    assert checked > 10
    for path in ("/api/health/live", "/api/plans", "/api/auth/me", "/login"):
        get, head = await client.get(path), await client.head(path)
        assert head.headers["content-length"] == get.headers["content-length"], path


async def test_head_as_anonymous_gets_the_guards_answer_without_a_body(client: Client) -> None:
    """Anonymous HEAD on a guarded route is the GET's 401 (API) or 303 (page), bodiless."""
    api = await client.head("/api/auth/me")
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.content == b""
    page = await client.head("/provider", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")


async def test_options_lists_every_method_to_anyone(app: Litestar, client: Client) -> None:
    """Anonymous OPTIONS on every route, guarded or not, is 204 with an `Allow` of exactly
    the route's methods, HEAD next to GET, and nothing else of the route."""
    for path, methods in _routes(app):
        response = await client.options(path)
        assert response.status_code == 204, (path, response.status_code, response.text)
        assert _allow(response.headers.get("allow")) == _allowed(methods), path
        assert response.content == b""


async def test_405_lists_head_next_to_get(client: Client) -> None:
    """A method the route lacks is 405 with an `Allow` that includes HEAD."""
    response = await client.delete("/api/health/live")
    assert response.status_code == 405
    assert _allow(response.headers.get("allow")) == {"GET", "HEAD", "OPTIONS"}
