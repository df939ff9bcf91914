"""`CSRFMiddleware`: session-bound CSRF tokens and cross-site refusal on unsafe requests.

Rules, for POST/PUT/PATCH/DELETE outside `/api/webhooks/`:

1. an `Origin` header other than `settings.base_origin` (including `null`) → 403;
2. `Sec-Fetch-Site: cross-site` → 403;
3. when the request carries the session cookie, `X-CSRF-Token` (or the `_csrf` field of an
   HTML form) must equal HMAC-SHA256(SESSION_SECRET, session id), compared in constant
   time → else 403 (SESSION_SECRET_PREVIOUS, while rotating, is accepted too).

Hand-written rather than Litestar's `CSRFConfig`: that is a double-submit cookie whose token
is a random value signed with the secret but bound to nothing; a token minted for one
session (or by an attacker who can set a cookie on a sibling subdomain) is valid for any
other. It also never looks at `Origin`/`Sec-Fetch-Site`, and it applies to requests without
a session, which the contract exempts (webhooks, public onboarding).
"""

from __future__ import annotations

import hmac
from typing import Final

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.auth.cookies import CookieNames, csrf_token, read_cookie
from cortiware.errors import problem_response
from cortiware.settings import Settings

__all__ = ["CSRF_FORM_FIELD", "CSRF_HEADER", "UNSAFE_METHODS", "CSRFMiddleware"]

CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FORM_FIELD: Final = "_csrf"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


class CSRFMiddleware(ASGIMiddleware):
    """Refuse cross-site unsafe requests, and session requests without the session's token."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = r"^/api/webhooks/"

    def __init__(self, settings: Settings) -> None:
        self.base_origin = settings.base_origin
        self.secrets = settings.session_secrets
        self.cookie_name = CookieNames.for_settings(settings).session

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass safe requests; check origin, fetch metadata and token on unsafe ones."""
        if scope.get("method") not in UNSAFE_METHODS:
            await next_app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") != self.base_origin:
            await _refuse(scope, receive, send, "Cross-site request refused (Origin).")
            return
        if headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
            await _refuse(scope, receive, send, "Cross-site request refused (Sec-Fetch-Site).")
            return
        session_id = read_cookie(scope, self.cookie_name)
        if session_id is not None:
            sent = headers.get(CSRF_HEADER) or await _form_token(scope, receive, headers)
            if not sent or not any(
                hmac.compare_digest(sent.encode(), csrf_token(secret, session_id).encode())
                for secret in self.secrets
            ):
                await _refuse(scope, receive, send, "Missing or wrong CSRF token.")
                return
        await next_app(scope, receive, send)


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


async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    request = scope["litestar_app"].request_class(scope=scope, receive=receive)
    await problem_response(403, detail).to_asgi_response(None, request)(scope, receive, send)
