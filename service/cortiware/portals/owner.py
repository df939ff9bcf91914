"""`/api/owner`: an owner reads its own organization and subscription, nothing else."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth import Principal, Role, require_roles
from cortiware.cache import TTL_ORGANIZATIONS
from cortiware.cache.read_through import read_through
from cortiware.errors import Forbidden, NotFound
from cortiware.organizations import (
    OrganizationDetail,
    SubscriptionOut,
    load_organization,
    subscription_of,
)
from cortiware.route_policy import declare

__all__ = ["OwnerController"]


def _organization_id(principal: Principal) -> uuid.UUID:
    if principal.organization_id is None:
        raise Forbidden("This session belongs to no organization.")
    return principal.organization_id


class OwnerController(Controller):
    """The owner's organization and subscription."""

    path = "/api/owner"
    tags = ["owner"]
    guards = [require_roles(Role.OWNER)]

    @get(
        "/organization",
        summary="The owner's organization",
        opt=declare(errors={404: "The organization no longer exists."}),
    )
    async def organization(
        self,
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
    ) -> OrganizationDetail:
        """The organization of the logged-in owner (cached)."""
        org_id = _organization_id(principal)

        async def fetch() -> OrganizationDetail | None:
            return await load_organization(db_session, org_id)

        found = await read_through(
            state, f"organizations:{org_id}", TTL_ORGANIZATIONS, fetch, OrganizationDetail | None
        )
        if found is None:
            raise NotFound("The organization no longer exists.")
        return found

    @get(
        "/subscription",
        summary="The owner's current subscription",
        opt=declare(errors={404: "The organization has no subscription."}),
    )
    async def subscription(
        self, principal: NamedDependency[Principal], db_session: NamedDependency[AsyncSession]
    ) -> SubscriptionOut:
        """404 when the organization has none."""
        current = await subscription_of(db_session, _organization_id(principal))
        if current is None:
            raise NotFound("The organization has no subscription.")
        return SubscriptionOut.of(current)
