"""The client's IP address: the socket peer, or `X-Forwarded-For` behind a trusted proxy.

When the peer is in `TRUSTED_PROXIES`, the `X-Forwarded-For` chain is read right to left,
skipping trusted addresses; the first untrusted entry is the client. Entries left of it are
whatever the client sent and are never believed, so a forged header from an untrusted peer
(or prepended by a client behind the proxy) changes nothing.

`rate_limit_subject` turns that address into what a rate-limit bucket is keyed by: an IPv6
client is its /64, because one subscriber usually holds a whole /64 (RFC 6177) and could
otherwise take a fresh bucket with every one of its 2^64 addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

__all__ = ["IPNetwork", "client_ip", "rate_limit_subject"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_ip(scope: Any, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The client address for `scope` (an ASGI HTTP scope), given the trusted proxy CIDRs."""
    client = scope.get("client")
    peer: str = client[0] if client else "unknown"
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    forwarded: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded.extend(p.strip() for p in value.decode("latin-1").split(","))
    hop = peer
    for entry in reversed(forwarded):
        if not entry:
            continue
        if not _trusted(entry, trusted_proxies):
            try:
                return str(ipaddress.ip_address(entry))
            except ValueError:
                return hop  # garbage from a client: the last proxy-written hop is firmer
        hop = entry
    return hop


IPV6_BUCKET_PREFIX = 64
"""IPv6 clients share one rate-limit bucket per /64."""


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
