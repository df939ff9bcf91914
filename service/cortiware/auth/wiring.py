"""What `create_app` adds for authentication: middleware (in order) and route handlers.

Not imported by `cortiware.auth` itself, so modules that only need `Principal` and the
guards stay light.
"""

from __future__ import annotations

from typing import Any

from cortiware.auth.csrf import CSRFMiddleware
from cortiware.auth.middleware import SessionMiddleware
from cortiware.auth.oidc import OIDCController
from cortiware.auth.routes import AuthController
from cortiware.settings import Settings

__all__ = ["auth_middleware", "auth_route_handlers"]


def auth_middleware(settings: Settings) -> list[Any]:
    """CSRF first (cheap refusals), then the session; both before rate limiting."""
    return [CSRFMiddleware(settings), SessionMiddleware(settings)]


def auth_route_handlers(settings: Settings) -> list[Any]:
    """`/api/auth/*`, plus `/api/auth/oidc/*` (which answers 404 unless OIDC is configured)."""
    return [AuthController, OIDCController]
