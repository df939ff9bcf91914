"""Page guards: like the API's, but an anonymous visitor is sent to `/login`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from cortiware.auth.cookies import CookieNames, read_cookie
from cortiware.auth.principal import Role, require_roles
from cortiware.auth.routes import settings_of
from cortiware.errors import Forbidden, Unauthorized
from cortiware.pages.error_pages import error_page

__all__ = ["LoginRequired", "forbidden_page", "redirect_to_login", "require_page_roles"]


class LoginRequired(Unauthorized):
    """No session on a page that needs one."""


def require_page_roles(
    *roles: Role,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard: redirect to /login without a session, 403 when the role is not in `roles`."""
    return require_roles(*roles, anonymous=LoginRequired, target="page")


def redirect_to_login(request: Request[Any, Any, Any], _: LoginRequired) -> Response[Any]:
    """303 to `/login?next=<this page>`, saying the session expired when the browser still
    sent a session cookie the service no longer knows."""
    target = f"/login?next={quote(request.url.path, safe='/')}"
    if read_cookie(request.scope, CookieNames.for_settings(settings_of(request)).session):
        target += "&expired=1"
    return Redirect(target, status_code=303)


def forbidden_page(request: Request[Any, Any, Any], exc: Forbidden) -> Response[Any]:
    """An HTML 403 page for a role that may not see this page."""
    return error_page(request, 403, exc.detail)
