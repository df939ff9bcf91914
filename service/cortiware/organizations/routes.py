"""`/api/provider/organizations`: the provider's view of every customer (cached)."""

from __future__ import annotations

import uuid
from typing import Any, Final

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth import Role, require_roles
from cortiware.cache.read_through import cache_of
from cortiware.organizations.queries import OrganizationDetail, OrganizationSummary
from cortiware.organizations.service import OrganizationService
from cortiware.route_policy import declare

__all__ = ["OrganizationController", "provide_organizations", "route_handlers"]


def provide_organizations(
    db_session: NamedDependency[AsyncSession], state: State
) -> OrganizationService:
    """DI provider: the organizations service on the request's session."""
    return OrganizationService(session=db_session, cache=cache_of(state))


ORGANIZATIONS_DEPENDENCIES: Final = {
    "organizations": Provide(provide_organizations, sync_to_thread=False)
}


class OrganizationController(Controller):
    """Organizations with their subscription status."""

    path = "/api/provider/organizations"
    tags = ["organizations"]
    guards = [require_roles(Role.PROVIDER)]
    dependencies = ORGANIZATIONS_DEPENDENCIES

    @get("/", summary="Every organization with its subscription status")
    async def list_organizations(
        self, organizations: NamedDependency[OrganizationService]
    ) -> list[OrganizationSummary]:
        """Newest first."""
        return await organizations.summaries()

    @get(
        "/{organization_id:uuid}",
        summary="One organization with owners and subscription",
        opt=declare(errors={404: "No such organization."}),
    )
    async def get_organization(
        self,
        organization_id: FromPath[uuid.UUID],
        organizations: NamedDependency[OrganizationService],
    ) -> OrganizationDetail:
        """404 when unknown."""
        return await organizations.detail(organization_id)


route_handlers: Final[list[Any]] = [OrganizationController]
