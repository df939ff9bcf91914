"""`/api/provider/organizations`: the provider's view of every customer (cached)."""

from __future__ import annotations

import uuid
from typing import Any, Final

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth import Role, require_roles
from cortiware.cache import TTL_ORGANIZATIONS
from cortiware.cache.read_through import read_through
from cortiware.errors import NotFound
from cortiware.organizations.queries import (
    OrganizationDetail,
    OrganizationSummary,
    load_organization,
    load_organizations,
)
from cortiware.route_policy import declare

__all__ = ["OrganizationController", "route_handlers"]


class OrganizationController(Controller):
    """Organizations with their subscription status."""

    path = "/api/provider/organizations"
    tags = ["organizations"]
    guards = [require_roles(Role.PROVIDER)]

    @get("/", summary="Every organization with its subscription status")
    async def list_organizations(
        self, db_session: NamedDependency[AsyncSession], state: State
    ) -> list[OrganizationSummary]:
        """Newest first."""
        return await read_through(
            state,
            "organizations:list",
            TTL_ORGANIZATIONS,
            lambda: load_organizations(db_session),
            list[OrganizationSummary],
        )

    @get(
        "/{organization_id:uuid}",
        summary="One organization with owners and subscription",
        opt=declare(errors={404: "No such organization."}),
    )
    async def get_organization(
        self, organization_id: FromPath[uuid.UUID], db_session: NamedDependency[AsyncSession]
    ) -> OrganizationDetail:
        """404 when unknown."""
        found = await load_organization(db_session, organization_id)
        if found is None:
            raise NotFound("No such organization.")
        return found


route_handlers: Final[list[Any]] = [OrganizationController]
