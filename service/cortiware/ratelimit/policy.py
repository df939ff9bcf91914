"""Which limit applies to a request, and whose bucket it counts against (contract §3).

| group        | routes                                              | bucket                 |
| ------------ | --------------------------------------------------- | ---------------------- |
| `auth`       | `POST /api/auth/login`                              | client IP + username   |
| `onboarding` | `/api/onboarding/verify`, `/api/onboarding/accept`  | client IP              |
| `default`    | every other `/api/` route                           | principal, else IP     |
| (none)       | `/api/health*`, `/api/webhooks/*`, non-`/api/` paths | not limited            |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cortiware.settings import RateLimitSpec, Settings

__all__ = ["GroupName", "RateLimitPolicy", "resolve_group"]

_ONBOARDING_PATHS = frozenset({"/api/onboarding/verify", "/api/onboarding/accept"})


class GroupName(StrEnum):
    """The three limit groups of the contract."""

    AUTH = "auth"
    ONBOARDING = "onboarding"
    DEFAULT = "default"


def resolve_group(method: str, path: str) -> GroupName | None:
    """The group limiting `method path`, or None when the route is not limited."""
    if not path.startswith("/api/") or path.startswith(("/api/health", "/api/webhooks/")):
        return None
    if path == "/api/auth/login" and method == "POST":
        return GroupName.AUTH
    if path.rstrip("/") in _ONBOARDING_PATHS:
        return GroupName.ONBOARDING
    return GroupName.DEFAULT


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """The configured limit of each group, from settings."""

    enabled: bool
    default: RateLimitSpec
    auth: RateLimitSpec
    onboarding: RateLimitSpec
    auth_ip: RateLimitSpec
    """Login attempts per client IP across all usernames (password spraying)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimitPolicy:
        """Read `RATE_LIMIT_*` from validated settings."""
        return cls(
            enabled=settings.rate_limit_enabled,
            default=settings.rate_limit_default,
            auth=settings.rate_limit_auth,
            onboarding=settings.rate_limit_onboarding,
            auth_ip=settings.rate_limit_auth_ip,
        )

    def spec(self, group: GroupName) -> RateLimitSpec:
        """The limit of `group`."""
        if group is GroupName.AUTH:
            return self.auth
        if group is GroupName.ONBOARDING:
            return self.onboarding
        return self.default
