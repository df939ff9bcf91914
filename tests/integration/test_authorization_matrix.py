"""Authorization matrix: every route of the app by every identity, generated from the route table.

HOW TO EXTEND (anyone adding a route):

1. Protect the route with `guards=[require_roles(...)]` (on the handler, its controller or a
   router). The allowed roles are read from those guards' `.allowed_roles`; nothing else is
   needed for the role check. Page routes use `require_page_roles(...)` (same attribute).
2. Add one entry to `ROUTES` below, keyed `"METHOD /path/template"` exactly as Litestar
   spells the path (e.g. `"GET /api/provider/plans/{plan_id:uuid}"`):
   - `Case()` for a guarded JSON route; pass `body=` when the call needs one to get past
     the guard (a 4xx other than 401/403 still counts as "let through");
   - `Case(public=True)` for a route anyone may call (login, onboarding, webhooks, …);
     add `checks_credentials=True` when the route itself answers 401 for bad credentials;
   - `Case(page=True)` for an HTML page: anonymous → redirect to /login, not 401;
   - `Case(external=True)` when a permitted call would reach an outside service (Stripe):
     permitted identities are checked against the guards directly instead of over HTTP;
   - `Case(own_org_field="id")` on owner routes: the JSON field that must be the caller's
     own organization id (an owner never sees another organization's data);
   - path parameters named `organization_id` get the first owner's organization, so the
     owner of the other organization must get 403 or 404 there.
3. A route in the app without an entry here, or an entry for a route that no longer
   exists, fails `test_every_route_has_an_expectation`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from cortiware.app import create_app
from cortiware.auth.principal import Role
from tests.conftest import SettingsFactory
from tests.support.auth import STAFF_PASSWORDS, OwnerAccount, create_owner


@dataclass(frozen=True)
class Case:
    """How to call one route, and what kind of route it is."""

    public: bool = False
    page: bool = False
    external: bool = False
    body: Any = None
    own_org_field: str | None = None
    ends_session: bool = False
    checks_credentials: bool = False


ROUTES: dict[str, Case] = {
    # health, docs
    "GET /api/health/live": Case(public=True),
    "GET /api/health/ready": Case(public=True),
    "GET /api/health": Case(public=True),
    "GET /api/docs": Case(public=True),
    "GET /api/docs/swagger": Case(public=True),
    "GET /api/docs/assets/{file_path:path}": Case(public=True),
    "HEAD /api/docs/assets/{file_path:path}": Case(public=True),
    "GET /api/docs/openapi.json": Case(public=True),
    "GET /api/docs/{path:str}": Case(public=True),
    # auth
    "POST /api/auth/login": Case(public=True, body={}),
    "POST /api/auth/logout": Case(public=True, ends_session=True),
    "GET /api/auth/me": Case(),
    "GET /api/auth/oidc/login": Case(public=True),
    "GET /api/auth/oidc/callback": Case(public=True),
    # onboarding
    "GET /api/provider/invites": Case(),
    "POST /api/provider/invites": Case(body={}),
    "POST /api/provider/invites/{invite_id:uuid}/revoke": Case(),
    "GET /api/onboarding/verify": Case(public=True),
    "POST /api/onboarding/accept": Case(public=True, body={}),
    "GET /api/provider/organizations": Case(),
    "GET /api/provider/organizations/{organization_id:uuid}": Case(),
    # monetization
    "GET /api/plans": Case(public=True),
    "GET /api/provider/monetization/config": Case(),
    "PUT /api/provider/monetization/config": Case(body={"unknown_field": 1}),
    "GET /api/provider/plans": Case(),
    "POST /api/provider/plans": Case(body={}),
    "PATCH /api/provider/plans/{plan_id:uuid}": Case(body={}),
    "DELETE /api/provider/plans/{plan_id:uuid}": Case(),
    "POST /api/provider/plans/{plan_id:uuid}/prices": Case(body={}),
    "PATCH /api/provider/plans/{plan_id:uuid}/prices/{price_id:uuid}": Case(body={}),
    "GET /api/provider/coupons": Case(),
    "POST /api/provider/coupons": Case(body={}),
    "DELETE /api/provider/coupons/{code:str}": Case(),
    # portals
    "GET /api/owner/organization": Case(own_org_field="id"),
    "GET /api/owner/subscription": Case(),
    "POST /api/owner/billing/portal": Case(external=True),
    "POST /api/owner/billing/checkout": Case(external=True, body={}),
    "GET /api/accountant/subscriptions": Case(),
    "GET /api/accountant/subscriptions.csv": Case(),
    "GET /api/accountant/revenue": Case(),
    "GET /api/developer/diagnostics": Case(),
    # audit
    "GET /api/provider/audit": Case(),
    "GET /api/provider/audit/retention": Case(),
    "PUT /api/provider/audit/retention": Case(body={}),
    # webhooks (signature-checked, not session-checked)
    "POST /api/webhooks/stripe": Case(public=True, body={}),
    "POST /api/webhooks/federation": Case(public=True, body={}),
    # pages
    "GET /login": Case(public=True),
    "POST /login": Case(public=True, checks_credentials=True, body={}),
    "POST /logout": Case(public=True, ends_session=True),
    "GET /onboarding": Case(public=True),
    "POST /onboarding": Case(public=True, body={}),
    "GET /": Case(public=True),
    "GET /provider": Case(page=True),
    "GET /provider/organizations/{organization_id:uuid}": Case(page=True),
    "GET /provider/invites": Case(page=True),
    "POST /provider/invites": Case(page=True, body={}),
    "POST /provider/invites/{invite_id:str}/revoke": Case(page=True, body={}),
    "GET /provider/plans": Case(page=True),
    "POST /provider/plans": Case(page=True, body={}),
    "POST /provider/plans/{plan_id:str}": Case(page=True, body={"name": ""}),
    "POST /provider/plans/{plan_id:str}/delete": Case(page=True, body={}),
    "POST /provider/prices": Case(page=True, body={}),
    "POST /provider/prices/{price_id:str}": Case(page=True, body={}),
    "POST /provider/prices/{price_id:str}/stripe": Case(page=True, body={}),
    "GET /provider/coupons": Case(page=True),
    "POST /provider/coupons": Case(page=True, body={}),
    "POST /provider/coupons/{code:str}/delete": Case(page=True, body={}),
    "GET /provider/settings": Case(page=True),
    # An invalid value: the config is one global row other tests rely on.
    "POST /provider/settings": Case(page=True, body={"trial_days": "-1"}),
    "GET /provider/audit": Case(page=True),
    "GET /owner": Case(page=True),
    "POST /owner/billing/portal": Case(page=True, external=True),
    "POST /owner/billing/checkout": Case(page=True, external=True, body={}),
    "GET /developer": Case(page=True),
    "GET /accountant": Case(page=True),
    "GET /account": Case(page=True),
    "GET /static/{file_path:path}": Case(public=True),
    "HEAD /static/{file_path:path}": Case(public=True),
}

IDENTITIES = ("anonymous", "provider", "developer", "accountant", "owner", "other_owner")
_PARAM = re.compile(r"\{(\w+):?[^}]*\}")


@dataclass
class Session:
    """A logged-in identity: its role, session cookie, CSRF token and organization."""

    role: Role | None
    cookie: str | None = None
    token: str | None = None
    organization_id: uuid.UUID | None = None


def route_table(app: Litestar) -> dict[str, tuple[HTTPRoute, frozenset[Role] | None, Any]]:
    """`"METHOD path"` → (route, roles allowed by its guards or None when unguarded, handler)."""
    table: dict[str, tuple[HTTPRoute, frozenset[Role] | None, Any]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            methods = sorted(m for m in handler.http_methods if m != "OPTIONS")
            guards = [g for layer in handler.ownership_layers for g in (layer.guards or [])]
            roles: frozenset[Role] | None = None
            for guard in guards:
                allowed = getattr(guard, "allowed_roles", None)
                assert allowed is not None, f"{route.path}: guard {guard!r} has no .allowed_roles"
                roles = frozenset(allowed) if roles is None else roles & frozenset(allowed)
            for method in methods:
                table[f"{method} {route.path}"] = (route, roles, handler)
    return table


def _fill(path: str, org_id: uuid.UUID) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "organization_id":
            return str(org_id)
        if name == "file_path":
            return "site.css"
        return str(uuid.uuid4()) if ":uuid" in match.group(0) else "does-not-exist"

    return _PARAM.sub(value, path)


@pytest.fixture
async def matrix_client(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of an app without rate limits (hundreds of calls from one address)."""
    settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        RATE_LIMIT_ENABLED="false",
    )
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as c:
        yield c


def test_every_route_has_an_expectation(make_settings: SettingsFactory) -> None:
    """The expectation table and the app's route table name exactly the same routes."""
    table = route_table(create_app(make_settings()))
    missing = sorted(set(table) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(table))
    assert not missing, f"routes without an authorization expectation: {missing}"
    assert not stale, f"expectations for routes that do not exist: {stale}"
    for key, (_, roles, _) in table.items():
        case = ROUTES[key]
        assert case.public == (roles is None), f"{key}: public={case.public} but guards={roles}"


async def _log_in(
    client: AsyncTestClient[Litestar], username: str, password: str, role: Role
) -> Session:
    client.cookies.clear()
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    session = Session(role=role, cookie=client.cookies.get("cw_session"))
    session.token = response.json()["csrf_token"]
    client.cookies.clear()
    return session


async def _sessions(
    client: AsyncTestClient[Litestar], owner: OwnerAccount, other: OwnerAccount
) -> dict[str, Session]:
    sessions = {"anonymous": Session(role=None)}
    for role in ("provider", "developer", "accountant"):
        sessions[role] = await _log_in(client, role, STAFF_PASSWORDS[role], Role(role))
    for name, account in (("owner", owner), ("other_owner", other)):
        sessions[name] = await _log_in(client, account.email, account.password, Role.OWNER)
        sessions[name].organization_id = account.organization_id
    return sessions


async def _call(
    client: AsyncTestClient[Litestar], method: str, path: str, case: Case, session: Session
) -> Any:
    client.cookies.clear()
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if session.cookie:
        client.cookies.set("cw_session", session.cookie, domain="testserver.local")
        headers["X-CSRF-Token"] = session.token or ""
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if case.body is not None:
        if path.startswith("/api/"):
            kwargs["json"] = case.body
        else:
            kwargs["data"] = {"_csrf": session.token or "", **case.body}
    return await client.request(method, path, **kwargs)


def _judge(
    case: Case, template: str, identity: str, *, allowed: bool, session: Session, response: Any
) -> str | None:
    """Why this answer is wrong for this identity, or None when it is right."""
    status = response.status_code
    if allowed:
        if identity == "other_owner" and "{organization_id" in template:
            return None if status in (403, 404) else "cross-organization must be 403/404"
        if status == 403 or (status == 401 and not case.checks_credentials):
            return "should be let through"
        if case.own_org_field and status == 200:
            seen = response.json().get(case.own_org_field)
            return None if seen == str(session.organization_id) else f"saw organization {seen}"
        return None
    if identity == "anonymous" and case.page:
        location = response.headers.get("location", "")
        return None if status in (302, 303) and location.startswith("/login") else "not /login"
    expected = 401 if identity == "anonymous" else 403
    return None if status == expected else f"expected {expected}"


async def _relogin(
    client: AsyncTestClient[Litestar], session: Session, account: OwnerAccount
) -> Session:
    role = session.role
    assert role is not None
    if role is Role.OWNER:
        fresh = await _log_in(client, account.email, account.password, role)
    else:
        fresh = await _log_in(client, role.value, STAFF_PASSWORDS[role.value], role)
    fresh.organization_id = session.organization_id
    return fresh


async def test_authorization_matrix(matrix_client: AsyncTestClient[Litestar]) -> None:
    """Only the roles a route's guards allow get past them; others get 401/403 or /login."""
    client = matrix_client
    owner, other = await create_owner(client.app, "Org A"), await create_owner(client.app, "Org B")
    sessions = await _sessions(client, owner, other)
    failures: list[str] = []
    for key, (_, roles, _) in sorted(route_table(client.app).items()):
        case = ROUTES[key]
        method, template = key.split(" ", 1)
        path = _fill(template, owner.organization_id)
        for identity in IDENTITIES:
            session = sessions[identity]
            allowed = roles is None or (session.role is not None and session.role in roles)
            if allowed and case.external:
                continue  # would reach Stripe; test_external_routes_allow_exactly_their_roles
            response = await _call(client, method, path, case, session)
            if problem := _judge(
                case, template, identity, allowed=allowed, session=session, response=response
            ):
                failures.append(f"{key} as {identity}: {response.status_code} ({problem})")
            if case.ends_session and session.cookie:
                account = owner if identity == "owner" else other
                sessions[identity] = await _relogin(client, session, account)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "key", sorted(k for k, case in ROUTES.items() if case.external and not case.public)
)
def test_external_routes_allow_exactly_their_roles(
    make_settings: SettingsFactory, key: str
) -> None:
    """Routes that call Stripe declare guards admitting exactly their intended roles."""
    table = route_table(create_app(make_settings()))
    _, roles, _ = table[key]
    assert roles == frozenset({Role.OWNER})
