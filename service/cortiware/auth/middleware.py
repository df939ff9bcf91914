"""`SessionMiddleware`: turns the session cookie into the request's `Principal`.

Listed before rate limiting and idempotency in `create_app`, because both key their state
by the principal id it sets (`cortiware.scope`).
"""

from __future__ import annotations

from typing import Any, cast

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.auth.cookies import CookieNames, read_cookie
from cortiware.auth.sessions import session_store_of
from cortiware.route_policy import policy_of
from cortiware.scope import (
    PRINCIPAL_ID_SCOPE_KEY,
    PRINCIPAL_SCOPE_KEY,
    SESSION_ID_SCOPE_KEY,
    session_id_of,
)
from cortiware.settings import Settings

__all__ = ["SessionMiddleware", "session_id_of"]


class SessionMiddleware(ASGIMiddleware):
    """Load the session named by the cookie and put its principal into the ASGI scope."""

    def __init__(self, settings: Settings) -> None:
        self.cookie_name = CookieNames.for_settings(settings).session

    def applies_to(self, handler: Any) -> bool:
        """Whether `handler`'s route reads the caller's session (`RequestPipeline`)."""
        return policy_of(handler).session

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Set `PRINCIPAL_SCOPE_KEY`, `PRINCIPAL_ID_SCOPE_KEY` and the session id, if live."""
        state = cast("dict[str, Any]", scope)
        for key in (PRINCIPAL_SCOPE_KEY, PRINCIPAL_ID_SCOPE_KEY, SESSION_ID_SCOPE_KEY):
            state.pop(key, None)  # never trust anything set before us
        session_id = read_cookie(scope, self.cookie_name)
        if session_id is not None:
            principal = await session_store_of(scope["litestar_app"]).load(session_id)
            if principal is not None:
                state[PRINCIPAL_SCOPE_KEY] = principal
                state[PRINCIPAL_ID_SCOPE_KEY] = principal.id
                state[SESSION_ID_SCOPE_KEY] = session_id
        await next_app(scope, receive, send)
