"""The organizations service: the provider's list and detail, an owner's own organization.

Reads only; the organization list and each organization are cached in the `organizations`
group, which every writer of organizations, owners or subscriptions invalidates after its
commit (`GROUP_ORGANIZATIONS`).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.cache import GROUP_ORGANIZATIONS, TTL_ORGANIZATIONS, Cache
from cortiware.cache.read_through import read_through
from cortiware.errors import NotFound
from cortiware.organizations.queries import (
    OrganizationDetail,
    OrganizationSummary,
    SubscriptionOut,
    load_organization,
    load_organizations,
    subscription_of,
)

__all__ = ["OrganizationService"]


class OrganizationService:
    """Organizations with their owners and subscription, in the caller's session."""

    __slots__ = ("cache", "session")

    def __init__(self, *, session: AsyncSession, cache: Cache | None = None) -> None:
        self.session = session
        self.cache = cache

    async def summaries(self) -> list[OrganizationSummary]:
        """Every organization, newest first (cached)."""
        return await read_through(
            self.cache,
            f"{GROUP_ORGANIZATIONS}:list",
            TTL_ORGANIZATIONS,
            lambda: load_organizations(self.session),
            list[OrganizationSummary],
        )

    async def detail(self, organization_id: uuid.UUID) -> OrganizationDetail:
        """One organization with owners and subscription.

        Raises:
            NotFound: no such organization (404).
        """
        found = await load_organization(self.session, organization_id)
        if found is None:
            raise NotFound("No such organization.")
        return found

    async def cached_detail(self, organization_id: uuid.UUID) -> OrganizationDetail:
        """As `detail`, through the cache (an owner's view of its own organization).

        Raises:
            NotFound: the organization no longer exists (404).
        """

        async def fetch() -> OrganizationDetail | None:
            return await load_organization(self.session, organization_id)

        found = await read_through(
            self.cache,
            f"{GROUP_ORGANIZATIONS}:{organization_id}",
            TTL_ORGANIZATIONS,
            fetch,
            OrganizationDetail | None,
        )
        if found is None:
            raise NotFound("The organization no longer exists.")
        return found

    async def subscription(self, organization_id: uuid.UUID) -> SubscriptionOut:
        """The organization's current subscription.

        Raises:
            NotFound: it has none (404).
        """
        current = await subscription_of(self.session, organization_id)
        if current is None:
            raise NotFound("The organization has no subscription.")
        return SubscriptionOut.of(current)
