"""`CSRFMiddleware`: session-bound CSRF tokens and cross-site refusal on unsafe requests.

Rules, for POST/PUT/PATCH/DELETE on routes that do not declare `csrf=False`
(`cortiware.route_policy`; the signed webhooks do):

1. `Sec-Fetch-Site: cross-site` → 403;
2. an `Origin` header other than `settings.base_origin` → 403, except `Origin: null` sent
   with `Sec-Fetch-Site: same-origin` (a browser that hides the origin of its own form, as
   Chromium does under `Referrer-Policy: no-referrer`: fetch metadata cannot be set by a
   page, so it vouches for the form's origin); `null` without it → 403. In development
   the origin the request was sent to (`http://` + `Host`) is the service's own too when
   `BASE_URL` is unset, or when both name loopback (`localhost`, `127.0.0.1`, `[::1]`) on
   the same port (`cortiware serve` sets `BASE_URL` to the address it serves);
3. when the request carries the session cookie, `X-CSRF-Token` (or the `_csrf` field of an
   HTML form) must equal HMAC-SHA256(SESSION_SECRET, session id), compared in constant
   time → else 403 (SESSION_SECRET_PREVIOUS, while rotating, is accepted too).

A refusal is raised as `Forbidden`, so it is answered like any other 403 of that route:
problem+json under `/api/`, the HTML error page on a page.

Hand-written rather than Litestar's `CSRFConfig`: that is a double-submit cookie whose token
is a random value signed with the secret but bound to nothing; a token minted for one
session (or by an attacker who can set a cookie on a sibling subdomain) is valid for any
other. It also never looks at `Origin`/`Sec-Fetch-Site`, and it applies to requests without
a session, which the contract exempts (webhooks, public onboarding).
"""

from __future__ import annotations

import hmac
from typing import Any, Final
from urllib.parse import urlsplit

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.auth.cookies import CookieNames, csrf_token, read_cookie
from cortiware.errors import Forbidden
from cortiware.route_policy import policy_of
from cortiware.settings import AppEnv, Settings

__all__ = ["CSRF_FORM_FIELD", "CSRF_HEADER", "UNSAFE_METHODS", "CSRFMiddleware"]

CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FORM_FIELD: Final = "_csrf"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})


class CSRFMiddleware(ASGIMiddleware):
    """Refuse cross-site unsafe requests, and session requests without the session's token."""

    scopes = (ScopeType.HTTP,)

    def applies_to(self, handler: Any) -> bool:
        """Whether `handler`'s route takes an unsafe method and is CSRF-checked
        (`RequestPipeline`)."""
        return policy_of(handler).csrf and not UNSAFE_METHODS.isdisjoint(handler.http_methods)

    def __init__(self, settings: Settings) -> None:
        self.base_origin = settings.base_origin
        self.secrets = settings.session_secrets
        self.cookie_name = CookieNames.for_settings(settings).session
        development = settings.app_env is AppEnv.DEVELOPMENT
        self.follows_host = development and "BASE_URL" in settings.uses_dev_defaults
        base = urlsplit(settings.base_origin)
        self.loopback_port = base.port if development and base.hostname in _LOOPBACK else None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass safe requests; check origin, fetch metadata and token on unsafe ones."""
        if (
            scope.get("method") not in UNSAFE_METHODS
            or not policy_of(scope.get("route_handler")).csrf
        ):
            await next_app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        if refused := self._cross_site(headers):
            raise Forbidden(f"Cross-site request refused ({refused}).")
        session_id = read_cookie(scope, self.cookie_name)
        if session_id is not None:
            sent = headers.get(CSRF_HEADER) or await _form_token(scope, receive, headers)
            if not sent or not any(
                hmac.compare_digest(sent.encode(), csrf_token(secret, session_id).encode())
                for secret in self.secrets
            ):
                raise Forbidden("Missing or wrong CSRF token.")
        await next_app(scope, receive, send)

    def _cross_site(self, headers: Headers) -> str | None:
        """Which header shows the request came from another site, or None."""
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site == "cross-site":
            return "Sec-Fetch-Site"
        origin = headers.get("origin")
        if origin is None:
            return None
        origin = origin.strip().rstrip("/")
        if origin == "null":
            return None if site == "same-origin" else "Origin"
        if origin == self.base_origin:
            return None
        host = headers.get("host", "")
        if origin == f"http://{host}" and (self.follows_host or self._loopback_alias(host)):
            return None
        return "Origin"

    def _loopback_alias(self, host: str) -> bool:
        if self.loopback_port is None:
            return False
        try:
            served = urlsplit(f"http://{host}")
            return served.hostname in _LOOPBACK and served.port == self.loopback_port
        except ValueError:
            return False


async def _form_token(scope: Scope, receive: Receive, headers: Headers) -> str | None:
    if not headers.get("content-type", "").lower().startswith(_FORM_TYPES):
        return None
    # Litestar keeps the parsed form in the connection state, so the handler reads it again.
    request = scope["litestar_app"].request_class(scope=scope, receive=receive)
    try:
        value = (await request.form()).get(CSRF_FORM_FIELD)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None  # an undecodable form carries no token: refused
    return value if isinstance(value, str) else None
