"""Response headers by route class: every `/api/` answer (JSON, problem, public, private,
webhook) carries `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`; pages carry
their CSP, frame and referrer policies. The API routes are taken from the live route table,
so a new GET route is checked without an entry here."""

from __future__ import annotations

import re
import uuid

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from cortiware import metrics
from tests.support.auth import create_owner, login, login_staff

Client = AsyncTestClient[Litestar]


def _api_get_paths(app: Litestar) -> list[str]:
    """Every GET path under /api/ with its parameters filled by a random UUID."""
    paths: list[str] = []
    for route in app.routes:
        api = isinstance(route, HTTPRoute) and route.path.startswith("/api/")
        if api and "GET" in route.methods:
            paths.append(re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path))
    assert len(paths) > 20
    return sorted(paths)


def _api_headers_problems(response: httpx.Response) -> list[str]:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    problems = []
    if response.headers.get("x-content-type-options") != "nosniff":
        problems.append(f"{where}: no X-Content-Type-Options: nosniff")
    if response.headers.get("cache-control") != "no-store":
        problems.append(f"{where}: Cache-Control {response.headers.get('cache-control')!r}")
    return problems


async def test_every_api_get_route_sends_nosniff_and_no_store(
    app: Litestar, client: Client
) -> None:
    """Anonymous, provider and owner GETs of every API route answer nosniff and no-store,
    whatever the status (200, 401, 403, 404, 400)."""
    paths = _api_get_paths(app)
    problems: list[str] = []
    for path in paths:
        problems += _api_headers_problems(await client.get(path))
    await login_staff(client, "provider")
    for path in paths:
        problems += _api_headers_problems(await client.get(path))
    client.cookies.clear()
    owner = await create_owner(app)
    await login(client, owner.email, owner.password)
    for path in paths:
        problems += _api_headers_problems(await client.get(path))
    assert not problems, "\n".join(problems)


async def test_authenticated_json_is_never_stored(app: Litestar, client: Client) -> None:
    """The routes the finding named (me, audit, organization, invites) answer 200 no-store."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    for path in ("/api/auth/me", "/api/provider/audit", "/api/provider/invites"):
        response = await client.get(path)
        assert response.status_code == 200
        assert not _api_headers_problems(response)
    client.cookies.clear()
    owner = await create_owner(app)
    await login(client, owner.email, owner.password)
    response = await client.get("/api/owner/organization")
    assert response.status_code == 200
    assert not _api_headers_problems(response)


async def test_api_errors_from_every_layer_send_nosniff_and_no_store(client: Client) -> None:
    """Problems from the guards, CSRF, routing, the input guard and webhooks carry them too."""
    responses = [
        await client.post("/api/provider/plans", json={}),  # 401 guard
        await client.post(
            "/api/auth/login", content=b"{", headers={"content-type": "application/json"}
        ),
        await client.get("/api/nowhere"),  # 404 routing
        await client.delete("/api/auth/me"),  # 405
        await client.post("/api/webhooks/stripe", content=b"{}"),  # 400 signature
        await client.post(
            "/api/provider/plans", json={}, headers={"Origin": "https://evil.example"}
        ),  # 403 CSRF
    ]
    problems = [p for response in responses for p in _api_headers_problems(response)]
    assert not problems, "\n".join(problems)
    assert {r.status_code for r in responses} >= {400, 401, 403, 404, 405}


async def test_pages_send_their_browser_policies(client: Client) -> None:
    """HTML pages carry a CSP with frame-ancestors 'none', X-Frame-Options, a same-origin
    referrer policy (the onboarding URL's token never leaves the site) and no-store."""
    for path in ("/login", "/onboarding?token=x"):
        response = await client.get(path)
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"


async def test_answers_no_route_gives_are_identified_counted_and_logged(client: Client) -> None:
    """The router's own 404 and 405 answers, and HEAD served as GET, carry an X-Request-ID
    and are counted under their route group (`unmatched` when no route answered): the
    request context runs around routing, not inside it."""
    before = metrics.snapshot()
    answers = [
        await client.get("/api/nowhere"),
        await client.get("/nowhere"),
        await client.delete("/api/health/live"),
        await client.head("/api/health/live"),
    ]
    assert [r.status_code for r in answers] == [404, 404, 405, 200]
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]) for r in answers)
    after = metrics.snapshot()

    def added(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    assert added("http.unmatched.4xx") == 3  # two 404s and the 405
    assert added("http.api.health.2xx") == 1  # HEAD, routed as GET to the health route
