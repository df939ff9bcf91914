"""OIDC login against a fake identity provider: the on/off switch, the flow and role mapping."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import AsyncTestClient

from cortiware.auth.middleware import SessionMiddleware
from cortiware.auth.oidc import (
    OIDC_HTTP_CLIENT,
    OIDCController,
    oidc_username,
    role_from_claims,
)
from cortiware.auth.principal import Role
from cortiware.auth.sessions import session_store_of
from cortiware.errors import exception_handlers
from cortiware.settings import AppEnv, Settings
from tests.conftest import SettingsFactory

ISSUER = "https://idp.example"
CLIENT_ID = "cortiware-test"
KEY = RSAKey.generate_key(2048, parameters={"kid": "test-key"})


class FakeIdP:
    """Discovery, JWKS and a token endpoint that signs whatever claims the test sets."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {}
        self.token_requests: list[dict[str, list[str]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one HTTP request to the fake provider."""
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if request.url.path == "/jwks":
            return httpx.Response(200, json=KeySet([KEY]).as_dict(private=False))
        if request.url.path == "/token":
            self.token_requests.append(parse_qs(request.content.decode()))
            token = jwt.encode({"alg": "RS256", "kid": "test-key"}, self.claims, KEY)
            return httpx.Response(200, json={"id_token": token, "access_token": "at"})
        return httpx.Response(404)


def _app(settings: Settings, idp: FakeIdP) -> Litestar:
    return Litestar(
        route_handlers=[OIDCController],
        middleware=[SessionMiddleware(settings)],
        state=State(
            {
                "settings": settings,
                OIDC_HTTP_CLIENT.name: httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)),
            }
        ),
        exception_handlers=exception_handlers,
    )


@pytest.fixture
def idp() -> FakeIdP:
    """A fresh fake identity provider."""
    return FakeIdP()


@pytest.fixture
async def client(
    make_settings: SettingsFactory, idp: FakeIdP
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of an app with OIDC configured against the fake provider."""
    settings = make_settings(
        OIDC_ISSUER=ISSUER, OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET="client-secret"
    )
    async with AsyncTestClient(app=_app(settings, idp), base_url="http://testserver.local") as c:
        yield c


async def _start(client: AsyncTestClient[Litestar]) -> dict[str, str]:
    response = await client.get("/api/auth/oidc/login", follow_redirects=False)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def _claims(nonce: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": CLIENT_ID, "sub": "u1", "nonce": nonce, "iat": now,
            "exp": now + 300, **extra}  # fmt: skip


async def test_disabled_oidc_routes_are_404(make_settings: SettingsFactory, idp: FakeIdP) -> None:
    """Without the three OIDC variables both routes answer 404."""
    async with AsyncTestClient(app=_app(make_settings(), idp)) as client:
        assert (await client.get("/api/auth/oidc/login")).status_code == 404
        assert (await client.get("/api/auth/oidc/callback?code=x&state=y")).status_code == 404


async def test_login_redirects_with_pkce_state_and_nonce(
    client: AsyncTestClient[Litestar],
) -> None:
    """The login route redirects to the IdP with code flow, PKCE S256, state and nonce."""
    params = await _start(client)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver.local/api/auth/oidc/callback"
    assert params["code_challenge_method"] == "S256"
    assert params["state"]
    assert params["nonce"]
    assert "openid" in params["scope"].split()


@pytest.mark.parametrize(
    ("claim", "role", "landing"),
    [("provider", Role.PROVIDER, "/provider"), (["developer"], Role.DEVELOPER, "/developer")],
)
async def test_callback_starts_a_session_with_the_mapped_role(
    client: AsyncTestClient[Litestar], idp: FakeIdP, claim: Any, role: Role, landing: str
) -> None:
    """A valid ID token with `cortiware_role` starts a session of that role and redirects."""
    params = await _start(client)
    idp.claims = _claims(
        params["nonce"], email="dev@example.com", email_verified=True, cortiware_role=claim
    )
    response = await client.get(
        f"/api/auth/oidc/callback?code=the-code&state={params['state']}", follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == landing
    assert idp.token_requests[0]["code_verifier"]
    session_id = client.cookies.get("cw_session")
    assert session_id
    principal = await session_store_of(client.app).load(session_id)
    assert principal is not None
    assert principal.role is role
    assert principal.username == "dev@example.com"


async def test_callback_without_role_claim_is_403(
    client: AsyncTestClient[Litestar], idp: FakeIdP
) -> None:
    """An identity without a provider/developer role claim gets no session."""
    params = await _start(client)
    idp.claims = _claims(params["nonce"], cortiware_role="owner")
    response = await client.get(f"/api/auth/oidc/callback?code=c&state={params['state']}")
    assert response.status_code == 403
    assert client.cookies.get("cw_session") is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: {"state": "wrong-state", "nonce": p["nonce"]},
        lambda p: {"state": p["state"], "nonce": "wrong-nonce"},
    ],
)
async def test_callback_with_wrong_state_or_nonce_is_401(
    client: AsyncTestClient[Litestar],
    idp: FakeIdP,
    tamper: Callable[[dict[str, str]], dict[str, str]],
) -> None:
    """A callback whose state or ID-token nonce does not match the started flow is 401."""
    params = tamper(await _start(client))
    idp.claims = _claims(params["nonce"], cortiware_role="provider")
    response = await client.get(f"/api/auth/oidc/callback?code=c&state={params['state']}")
    assert response.status_code == 401


def test_role_mapping() -> None:
    """Provider wins over developer; other values map to nothing."""
    assert role_from_claims({"cortiware_role": ["developer", "provider"]}) is Role.PROVIDER
    assert role_from_claims({"cortiware_role": "developer"}) is Role.DEVELOPER
    assert role_from_claims({"cortiware_role": "accountant"}) is None
    assert role_from_claims({}) is None


def test_username_is_the_verified_email_and_never_a_staff_name() -> None:
    """An unverified e-mail is not used; a name equal to a staff username becomes `oidc:<sub>`."""
    staff = {"provider", "dev-staff"}
    verified = {"sub": "s1", "email": "a@example.com", "email_verified": True}
    assert oidc_username(verified, staff) == "a@example.com"
    unverified = {"sub": "s1", "email": "a@example.com", "preferred_username": "ann"}
    assert oidc_username(unverified, staff) == "ann"
    assert (
        oidc_username({"sub": "s1", "email": "x@example.com", "email_verified": "true"}, staff)
        == "s1"
    )
    assert oidc_username({"sub": "s2", "preferred_username": "Provider"}, staff) == "oidc:s2"
    assert oidc_username({"sub": "s3", "email": "DEV-STAFF", "email_verified": True}, staff) == (
        "oidc:s3"
    )


async def test_callback_expires_the_flow_cookie_with_its_secure_attributes(
    make_settings: SettingsFactory, idp: FakeIdP
) -> None:
    """With secure cookies the flow cookie is `__Host-`: its deletion must carry `Secure`, or
    browsers ignore it and the state, nonce and PKCE verifier linger."""
    settings = dataclasses.replace(
        make_settings(
            OIDC_ISSUER=ISSUER, OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET="client-secret"
        ),
        app_env=AppEnv.STAGING,
    )
    assert settings.secure_cookies
    async with AsyncTestClient(app=_app(settings, idp), base_url="https://testserver.local") as c:
        params = await _start(c)
        idp.claims = _claims(params["nonce"], cortiware_role="developer")
        response = await c.get(
            f"/api/auth/oidc/callback?code=the-code&state={params['state']}",
            follow_redirects=False,
        )
    assert response.status_code == 303
    expired = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("__Host-cw_oidc=")
    )
    assert "Max-Age=0" in expired
    assert "Secure" in expired
    assert "HttpOnly" in expired
