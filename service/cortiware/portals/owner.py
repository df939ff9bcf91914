"""`/api/owner`: an owner reads its own organization and subscription, nothing else."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.di import NamedDependency

from cortiware.auth import Principal, Role, require_roles
from cortiware.errors import Forbidden
from cortiware.organizations import OrganizationDetail, SubscriptionOut
from cortiware.organizations.routes import ORGANIZATIONS_DEPENDENCIES
from cortiware.organizations.service import OrganizationService
from cortiware.route_policy import declare

__all__ = ["OwnerController", "organization_of"]


def organization_of(principal: Principal) -> uuid.UUID:
    """The organization of an owner's session.

    Raises:
        Forbidden: the session belongs to no organization (403).
    """
    if principal.organization_id is None:
        raise Forbidden("This session belongs to no organization.")
    return principal.organization_id


class OwnerController(Controller):
    """The owner's organization and subscription."""

    path = "/api/owner"
    tags = ["owner"]
    guards = [require_roles(Role.OWNER)]
    dependencies = ORGANIZATIONS_DEPENDENCIES

    @get(
        "/organization",
        summary="The owner's organization",
        opt=declare(errors={404: "The organization no longer exists."}),
    )
    async def organization(
        self,
        principal: NamedDependency[Principal],
        organizations: NamedDependency[OrganizationService],
    ) -> OrganizationDetail:
        """The organization of the logged-in owner (cached)."""
        return await organizations.cached_detail(organization_of(principal))

    @get(
        "/subscription",
        summary="The owner's current subscription",
        opt=declare(errors={404: "The organization has no subscription."}),
    )
    async def subscription(
        self,
        principal: NamedDependency[Principal],
        organizations: NamedDependency[OrganizationService],
    ) -> SubscriptionOut:
        """404 when the organization has none."""
        return await organizations.subscription(organization_of(principal))
