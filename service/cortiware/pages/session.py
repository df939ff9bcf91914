"""`/login`, `/logout` and `/account` pages."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from cortiware.auth.principal import Role, principal_of
from cortiware.auth.routes import home_path
from cortiware.pages._api import call_api, read_form
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles

__all__ = ["SessionPages"]


def _safe_next(value: str | None) -> str | None:
    # Only same-site paths: `//evil.example` and `/\evil` would leave the site.
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return None


class SessionPages(Controller):
    """Log in (through `POST /api/auth/login`), log out, and the staff landing page."""

    path = "/"

    @get("/login")
    async def login_form(self, request: Request[Any, Any, Any]) -> Template:
        """The login form."""
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")))

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Log in and go to the role's page (or `next`); the form again on failure."""
        form = await read_form(request)
        result = await call_api(
            request,
            "POST",
            "/api/auth/login",
            json={
                "username": str(form.get("username", "")),
                "password": str(form.get("password", "")),
            },
        )
        next_path = _safe_next(str(form.get("next", "")))
        if not result.ok:
            return render(
                request,
                "login.html",
                status=result.status,
                error=result.detail,
                username=str(form.get("username", "")),
                next=next_path,
            )
        role = Role(result.body["role"])
        return Redirect(next_path or home_path(role), status_code=303, cookies=result.cookies)

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End the session and go back to the login form."""
        result = await call_api(request, "POST", "/api/auth/logout")
        return Redirect("/login", status_code=303, cookies=result.cookies)

    @get(
        "/account",
        guards=[require_page_roles(Role.PROVIDER, Role.DEVELOPER, Role.ACCOUNTANT, Role.OWNER)],
    )
    async def account(self, request: Request[Any, Any, Any]) -> Template:
        """Who is logged in, and the API endpoints of that role (developer, accountant)."""
        principal = principal_of(request)
        return render(request, "account.html", home=home_path(principal.role) if principal else "/")
