"""The client's IP address: the socket peer, or `X-Forwarded-For` behind a trusted proxy.

When the peer is in `TRUSTED_PROXIES`, the `X-Forwarded-For` chain is read right to left,
skipping trusted addresses; the first untrusted entry is the client. Entries left of it are
whatever the client sent and are never believed, so a forged header from an untrusted peer
(or prepended by a client behind the proxy) changes nothing.

Used by rate limiting and idempotency (whose bucket or scope it keys) and by the audit log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

__all__ = ["IPNetwork", "client_ip"]

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
