"""Who is calling: the `Principal` of a request and the role guards routes declare."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from cortiware.errors import Forbidden, Unauthorized
from cortiware.route_policy import is_generated_options
from cortiware.scope import PRINCIPAL_ID_SCOPE_KEY, PRINCIPAL_SCOPE_KEY

__all__ = [
    "PRINCIPAL_ID_SCOPE_KEY",
    "PRINCIPAL_SCOPE_KEY",
    "Principal",
    "Role",
    "provide_optional_principal",
    "provide_principal",
    "require_roles",
]


class Role(StrEnum):
    """The four roles of contract §3."""

    PROVIDER = "provider"
    DEVELOPER = "developer"
    ACCOUNTANT = "accountant"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    role: Role
    username: str
    organization_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None

    @property
    def id(self) -> str:
        """Stable identifier used to key limits and idempotency."""
        return f"{self.role.value}:{self.username}"


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The principal attached to this connection, if any."""
    value = connection.scope.get(PRINCIPAL_SCOPE_KEY)
    return value if isinstance(value, Principal) else None


def require_roles(
    *roles: Role,
    anonymous: type[Unauthorized] = Unauthorized,
    target: str = "endpoint",
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard: `anonymous` (401) without a session, 403 when the role is not in `roles`.

    Pages pass their own `anonymous` error, which their handler turns into a redirect.
    """
    allowed = frozenset(roles)

    # A coroutine function: Litestar runs a plain function guard in a worker thread
    # (`sync_to_thread`), a thread hand-off per guarded request for a few attribute reads.
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if is_generated_options(handler):
            # Litestar's own OPTIONS answer inherits the controller's guards, but says only
            # which methods the path has, as a 405 to anyone would (RFC 9110 §9.3.7).
            return
        principal = principal_of(connection)
        if principal is None:
            raise anonymous("Log in first.")
        if principal.role not in allowed:
            raise Forbidden(f"Your role may not use this {target}.")

    guard.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the authz matrix test
    return guard


async def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """DI provider: the caller, or 401."""
    principal = principal_of(request)
    if principal is None:
        raise Unauthorized("Log in first.")
    return principal


async def provide_optional_principal(
    request: ASGIConnection[Any, Any, Any, Any],
) -> Principal | None:
    """DI provider: the caller, or None for anonymous requests."""
    return principal_of(request)
