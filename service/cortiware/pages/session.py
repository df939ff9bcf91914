"""`/login`, `/logout` and `/account` pages."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from cortiware.auth.credentials import authenticate
from cortiware.auth.principal import Role, principal_of
from cortiware.auth.routes import (
    INVALID_CREDENTIALS,
    end_session,
    home_path,
    settings_of,
    start_session,
)
from cortiware.db.session import DB_SESSIONMAKER, transaction
from cortiware.pages._commands import rate_limited
from cortiware.pages._forms import read_form
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles
from cortiware.ratelimit import GroupName

__all__ = ["SessionPages"]


def _safe_next(value: str | None) -> str | None:
    # Only same-site paths: `//evil.example` and `/\evil` would leave the site.
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return None


class SessionPages(Controller):
    """Log in (as `POST /api/auth/login` does, in its rate limit), log out, the staff page."""

    path = "/"

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        """`/` leads each role to its home page, and a visitor to the login form."""
        principal = principal_of(request)
        return Redirect(home_path(principal.role) if principal else "/login", status_code=303)

    @get("/login")
    async def login_form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The login form; someone already logged in goes home (or to `next`)."""
        next_path = _safe_next(request.query_params.get("next"))
        if principal := principal_of(request):
            return Redirect(next_path or home_path(principal.role), status_code=303)
        expired = request.query_params.get("expired") == "1"
        return render(request, "login.html", next=next_path, expired=expired)

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Log in and go to the role's page (or `next`); the form again on failure."""
        form = await read_form(request)
        username = str(form.get("username", ""))
        next_path = _safe_next(str(form.get("next", "")))

        def again(status: int, error: str, headers: dict[str, str] | None = None) -> Template:
            return render(request, "login.html", status=status, headers=headers, error=error,
                          username=username, next=next_path)  # fmt: skip

        if refused := await rate_limited(request, GroupName.AUTH, username=username):
            return again(refused.status, refused.detail, refused.headers)
        settings = settings_of(request)
        async with transaction(DB_SESSIONMAKER.get(request.app)) as session:
            principal = await authenticate(
                settings, session, username, str(form.get("password", ""))
            )
        if principal is None:
            return again(401, INVALID_CREDENTIALS)
        _, cookies = await start_session(request, principal)
        return Redirect(next_path or home_path(principal.role), status_code=303, cookies=cookies)

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End the session and go back to the login form."""
        if refused := await rate_limited(request, GroupName.DEFAULT):
            return render(request, "login.html", status=refused.status, headers=refused.headers,
                          error=refused.detail)  # fmt: skip
        return Redirect("/login", status_code=303, cookies=await end_session(request))

    @get(
        "/account",
        guards=[require_page_roles(Role.PROVIDER, Role.DEVELOPER, Role.ACCOUNTANT, Role.OWNER)],
    )
    async def account(self, request: Request[Any, Any, Any]) -> Template:
        """Who is logged in, and the API endpoints of that role (developer, accountant)."""
        principal = principal_of(request)
        return render(request, "account.html", home=home_path(principal.role) if principal else "/")
