"""`/api/auth/*`: log in, log out, who am I (contract §3 "Auth and roles")."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.auth.cookies import (
    CookieNames,
    csrf_token,
    expired_cookies,
    read_cookie,
    session_cookies,
)
from cortiware.auth.credentials import authenticate
from cortiware.auth.principal import Principal, Role, require_roles
from cortiware.auth.sessions import session_store_of
from cortiware.errors import Unauthorized
from cortiware.route_policy import GroupName, declare
from cortiware.scope import session_id_of
from cortiware.settings import Settings

__all__ = [
    "INVALID_CREDENTIALS",
    "AuthController",
    "LoginBody",
    "LoginResult",
    "MeResult",
    "end_session",
    "home_path",
    "settings_of",
    "start_session",
]

INVALID_CREDENTIALS = "Invalid username or password."
"""The one message for every failed login, whatever was wrong."""


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/auth/login` body; owners use their e-mail as `username`."""

    username: str
    password: str


class LoginResult(msgspec.Struct):
    """A successful login: who, and the CSRF token for unsafe requests of this session."""

    role: str
    username: str
    csrf_token: str


class MeResult(msgspec.Struct):
    """The caller of `GET /api/auth/me`."""

    role: str
    username: str
    organization_id: uuid.UUID | None


def home_path(role: Role) -> str:
    """The page a role lands on after logging in."""
    return {
        Role.PROVIDER: "/provider",
        Role.OWNER: "/owner",
        Role.DEVELOPER: "/developer",
        Role.ACCOUNTANT: "/accountant",
    }[role]


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    """The validated settings the app was built with."""
    return SETTINGS.get(connection.app)


async def start_session(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
) -> tuple[str, list[Any]]:
    """Replace the caller's session (if any) by a new one: its CSRF token and cookies."""
    store = session_store_of(connection.app)
    if (old := session_id_of(connection.scope)) is not None:
        await store.destroy(old)  # rotation: the pre-login id never becomes authenticated
    session_id = await store.create(principal)
    settings = settings_of(connection)
    return csrf_token(settings.session_secret, session_id), session_cookies(settings, session_id)


async def end_session(connection: ASGIConnection[Any, Any, Any, Any]) -> list[Any]:
    """Destroy the caller's server-side session; the cookies that clear it in the browser.

    The id comes from the cookie when the session could not be loaded (Redis unreachable):
    the store then remembers it as revoked and deletes it in Redis once Redis answers.
    """
    settings = settings_of(connection)
    session_id = session_id_of(connection.scope) or read_cookie(
        connection.scope, CookieNames.for_settings(settings).session
    )
    if session_id is not None:
        await session_store_of(connection.app).destroy(session_id)
    return expired_cookies(settings)


class AuthController(Controller):
    """Log in with a username (or owner e-mail) and password; log out; who am I."""

    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/login",
        status_code=200,
        summary="Log in: start a session and get its CSRF token",
        opt=declare(rate_limit=GroupName.AUTH, errors={401: INVALID_CREDENTIALS}),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginBody],
        db_session: NamedDependency[AsyncSession],
    ) -> Response[LoginResult]:
        """Start a session; 401 with one message whatever was wrong."""
        principal = await authenticate(
            settings_of(request), db_session, data.username, data.password
        )
        if principal is None:
            raise Unauthorized(INVALID_CREDENTIALS)
        token, cookies = await start_session(request, principal)
        return Response(
            LoginResult(role=principal.role.value, username=principal.username, csrf_token=token),
            cookies=cookies,
            headers={"Cache-Control": "no-store"},
        )

    @post(
        "/logout",
        status_code=204,
        summary="Log out: end the session",
        # `Response[None]` would be documented as a JSON `null` body; a 204 has none.
        responses={204: ResponseSpec(None, description="Logged out; no body.")},
    )
    async def logout(self, request: Request[Any, Any, Any]) -> Response[None]:
        """End the session (204 also when there was none)."""
        return Response(None, status_code=204, cookies=await end_session(request))

    @get("/me", guards=[require_roles(*Role)], summary="Who is logged in")
    async def me(self, principal: NamedDependency[Principal]) -> MeResult:
        """The caller's role, username and organization."""
        return MeResult(
            role=principal.role.value,
            username=principal.username,
            organization_id=principal.organization_id,
        )
