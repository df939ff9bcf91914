"""The limit of each group, and whose bucket a request counts against (contract §3).

A route declares its group (`rate_limit=` in `cortiware.route_policy`); undeclared, it is in
`default`:

| group        | declared by                                           | bucket               |
| ------------ | ----------------------------------------------------- | -------------------- |
| `auth`       | `POST /api/auth/login`                                | client IP + username |
| `onboarding` | `/api/onboarding/verify`, `/api/onboarding/accept`    | client IP            |
| `default`    | every other API route                                 | principal, else IP   |
| (none)       | health, signed webhooks, pages and static files       | not limited          |

`rate_limit_subject` turns the client address into what a bucket is keyed by: an IPv6
client is its /64, because one subscriber usually holds a whole /64 (RFC 6177) and could
otherwise take a fresh bucket with every one of its 2^64 addresses.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from cortiware.route_policy import GroupName
from cortiware.settings import RateLimitSpec, Settings

__all__ = ["IPV6_BUCKET_PREFIX", "GroupName", "RateLimitPolicy", "rate_limit_subject"]


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


IPV6_BUCKET_PREFIX = 64
"""IPv6 clients share one rate-limit bucket per /64."""


@functools.lru_cache(maxsize=4096)  # a pure function of the string, asked on every request
def rate_limit_subject(address: str) -> str:
    """The rate-limit identity of a client address: IPv4 as is, IPv6 as its /64.

    An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) counts as the IPv4 address.
    Anything that is not an address (`unknown`, a test client name) is returned unchanged.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_BUCKET_PREFIX), strict=False))
    return str(ip)
