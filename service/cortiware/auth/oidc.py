"""Optional OIDC login for the provider and developer roles (authorization code + PKCE).

Enabled when `OIDC_ISSUER`, `OIDC_CLIENT_ID` and `OIDC_CLIENT_SECRET` are all set; otherwise
both routes answer 404. The redirect URI to register at the identity provider is
`{BASE_URL}/api/auth/oidc/callback`.

Role mapping: the ID token's `cortiware_role` claim (a string or a list of strings) must
contain `provider` or `developer` (provider wins when both are present); anything else is
403. The session's username is the token's `email` when `email_verified` is true, else
`preferred_username`, else `sub`; a name equal to one of the environment's staff usernames
becomes `oidc:<sub>`, so an identity provider account cannot share a staff account's
rate-limit buckets, idempotency scope or audit attribution.

authlib builds the authorization request (`prepare_grant_uri`, PKCE S256, random tokens);
the ID token is verified with joserfc (authlib's own `authlib.jose` and httpx integration are
deprecated in the installed authlib and warn on import).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect

from cortiware.app_state import StateKey
from cortiware.auth.principal import Principal, Role
from cortiware.auth.routes import home_path, settings_of, start_session
from cortiware.errors import Forbidden, NotFound, Unauthorized, UpstreamError
from cortiware.route_policy import declare
from cortiware.settings import Settings

__all__ = [
    "OIDC_HTTP_CLIENT",
    "ROLE_CLAIM",
    "OIDCController",
    "oidc_username",
    "role_from_claims",
]

ROLE_CLAIM: Final = "cortiware_role"
OIDC_HTTP_CLIENT: Final = StateKey("oidc_http_client", httpx.AsyncClient)
"""`app.state` entry of an `httpx.AsyncClient` to use for the IdP (tests set a fake one)."""


@dataclass(frozen=True, slots=True)
class _Discovery:
    """The identity provider's discovery document and when it was fetched (monotonic)."""

    fetched_at: float
    document: dict[str, Any]


_METADATA: Final = StateKey("oidc_metadata", _Discovery)
_FLOW_MAX_AGE: Final = 600
_METADATA_TTL: Final = 3600
_SALT: Final = "cortiware-oidc-flow"


def role_from_claims(claims: dict[str, Any]) -> Role | None:
    """`provider` or `developer` from the `cortiware_role` claim, else None."""
    raw = claims.get(ROLE_CLAIM)
    values = {raw} if isinstance(raw, str) else set(raw) if isinstance(raw, list) else set()
    for role in (Role.PROVIDER, Role.DEVELOPER):
        if role.value in values:
            return role
    return None


def _flow_cookie_name(settings: Settings) -> str:
    return "__Host-cw_oidc" if settings.secure_cookies else "cw_oidc"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    # itsdangerous takes keys oldest first: signs with the last, verifies with any (rotation).
    return URLSafeTimedSerializer(list(reversed(settings.session_secrets)), salt=_SALT)


def _redirect_uri(settings: Settings) -> str:
    return f"{settings.base_url}/api/auth/oidc/callback"


async def _fetch_json(request: Request[Any, Any, Any], method: str, url: str, **kw: Any) -> Any:
    client = OIDC_HTTP_CLIENT.find(request.app)
    try:
        if client is not None:
            response = await client.request(method, url, **kw)
        else:
            async with httpx.AsyncClient(timeout=5.0) as own:
                response = await own.request(method, url, **kw)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise UpstreamError("The identity provider could not be reached.") from exc


async def _metadata(request: Request[Any, Any, Any], settings: Settings) -> dict[str, Any]:
    cached = _METADATA.find(request.app)
    if cached is not None and time.monotonic() - cached.fetched_at < _METADATA_TTL:
        return cached.document
    issuer = (settings.oidc_issuer or "").rstrip("/")
    metadata = await _fetch_json(request, "GET", f"{issuer}/.well-known/openid-configuration")
    if not isinstance(metadata, dict):
        raise UpstreamError("The identity provider's discovery document is invalid.")
    _METADATA.set(request.app, _Discovery(time.monotonic(), metadata))
    return metadata


def _enabled(request: Request[Any, Any, Any]) -> Settings:
    settings = settings_of(request)
    if not settings.oidc_enabled:
        raise NotFound("OIDC login is not configured.")
    return settings


class OIDCController(Controller):
    """`/api/auth/oidc/login` redirects to the identity provider, which returns to `callback`."""

    path = "/api/auth/oidc"
    tags = ["auth"]

    @get(
        "/login",
        status_code=302,
        opt=declare(
            errors={
                404: "OIDC login is not configured.",
                502: "The identity provider could not be reached.",
            }
        ),
    )
    async def login(self, request: Request[Any, Any, Any]) -> Redirect:
        """Redirect to the IdP's authorization endpoint (302); 404 when OIDC is off."""
        settings = _enabled(request)
        metadata = await _metadata(request, settings)
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=settings.oidc_client_id,
            response_type="code",
            redirect_uri=_redirect_uri(settings),
            scope="openid email profile",
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        flow = _serializer(settings).dumps({"state": state, "nonce": nonce, "verifier": verifier})
        cookie = Cookie(
            key=_flow_cookie_name(settings),
            value=str(flow),
            path="/",
            httponly=True,
            secure=settings.secure_cookies,
            samesite="lax",
            max_age=_FLOW_MAX_AGE,
        )
        return Redirect(url, status_code=302, cookies=[cookie])

    @get(
        "/callback",
        status_code=303,
        opt=declare(
            errors={
                401: "The login attempt expired or the ID token is invalid.",
                403: "The identity provider gave no role of provider or developer.",
                404: "OIDC login is not configured.",
                502: "The identity provider could not be reached.",
            }
        ),
    )
    async def callback(
        self,
        request: Request[Any, Any, Any],
        code: Annotated[str, QueryParameter(name="code")] = "",
        oauth_state: Annotated[str, QueryParameter(name="state")] = "",
    ) -> Response[Any]:
        """Exchange the code, verify the ID token, start a session, redirect to the portal."""
        settings = _enabled(request)
        raw_flow = request.cookies.get(_flow_cookie_name(settings), "")
        try:
            flow = _serializer(settings).loads(raw_flow, max_age=_FLOW_MAX_AGE)
        except BadSignature as exc:
            raise Unauthorized("The login attempt expired; start again.") from exc
        if not code or not hmac.compare_digest(oauth_state.encode(), str(flow["state"]).encode()):
            raise Unauthorized("The login attempt expired; start again.")
        metadata = await _metadata(request, settings)
        tokens = await _fetch_json(
            request,
            "POST",
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": _redirect_uri(settings),
                "code_verifier": flow["verifier"],
            },
            auth=(settings.oidc_client_id or "", settings.oidc_client_secret or ""),
        )
        jwks = await _fetch_json(request, "GET", metadata["jwks_uri"])
        issuer = str(metadata.get("issuer") or settings.oidc_issuer)
        claims = _verify_id_token(settings, issuer, tokens.get("id_token", ""), jwks, flow["nonce"])
        role = role_from_claims(claims)
        if role is None:
            raise Forbidden(f"The identity provider gave no {ROLE_CLAIM} of provider or developer.")
        username = oidc_username(claims, {c.username.casefold() for c in settings.staff})
        _, cookies = await start_session(request, Principal(role=role, username=username))
        # Deleting a `__Host-` cookie needs the same attributes as setting it (`Secure`).
        cookies.append(
            Cookie(
                key=_flow_cookie_name(settings),
                value="",
                path="/",
                httponly=True,
                secure=settings.secure_cookies,
                samesite="lax",
                max_age=0,
            )
        )
        return Redirect(home_path(role), status_code=303, cookies=cookies)


def oidc_username(claims: dict[str, Any], staff_usernames: set[str]) -> str:
    """The session username of an OIDC login: the verified `email`, else `preferred_username`,
    else `sub`; `oidc:<sub>` when that name is one of the environment's staff usernames (which
    key rate limits, idempotency scope and audit rows of the staff account itself)."""
    email = claims.get("email") if claims.get("email_verified") is True else None
    username = str(email or claims.get("preferred_username") or claims["sub"])
    if username.casefold() in staff_usernames:
        return f"oidc:{claims['sub']}"
    return username


def _verify_id_token(
    settings: Settings, issuer: str, id_token: str, jwks: Any, nonce: str
) -> dict[str, Any]:
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(jwks))
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": settings.oidc_client_id or ""},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
            exp={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise Unauthorized("The identity provider's ID token is invalid.") from exc
    return dict(token.claims)
