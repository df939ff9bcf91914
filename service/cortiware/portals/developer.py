"""`/api/developer/diagnostics`: what a developer needs to know, never a secret's value."""

from __future__ import annotations

from typing import Final

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.auth import Role, require_roles
from cortiware.kv import KV_STATE, redis_status
from cortiware.portals.schemas import Diagnostics, Migrations
from cortiware.portals.service import DeveloperDiagnostics

__all__ = ["DeveloperController", "Diagnostics", "Migrations", "provide_diagnostics"]


def provide_diagnostics(
    db_session: NamedDependency[AsyncSession], state: State
) -> DeveloperDiagnostics:
    """DI provider: diagnostics on the request's session, Redis checked as `/api/health` does."""

    async def redis() -> str:
        return await redis_status(KV_STATE.get(state))

    return DeveloperDiagnostics(
        session=db_session, settings=SETTINGS.get(state), redis_status=redis
    )


_DEPENDENCIES: Final = {"diagnostics": Provide(provide_diagnostics, sync_to_thread=False)}


class DeveloperController(Controller):
    """Diagnostics for developers (and providers)."""

    path = "/api/developer"
    tags = ["developer"]
    guards = [require_roles(Role.DEVELOPER, Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @get("/diagnostics", summary="Version, migrations, dependencies, features, webhooks")
    async def diagnostics(self, diagnostics: NamedDependency[DeveloperDiagnostics]) -> Diagnostics:
        """A snapshot; the database answered if this returns at all."""
        return await diagnostics.snapshot()
