"""Customer organizations as the provider and their owners see them."""

from cortiware.organizations.queries import (
    OrganizationDetail,
    OrganizationSummary,
    SubscriptionOut,
    load_organization,
    load_organizations,
    subscription_of,
)
from cortiware.organizations.routes import route_handlers

__all__ = [
    "OrganizationDetail",
    "OrganizationSummary",
    "SubscriptionOut",
    "load_organization",
    "load_organizations",
    "route_handlers",
    "subscription_of",
]
