"""Rate-limit response headers: IETF draft `RateLimit-Policy`/`RateLimit` plus the legacy
`RateLimit-Limit`/`-Remaining`/`-Reset`, and `Retry-After` on a 429.

See draft-ietf-httpapi-ratelimit-headers (structured fields: `"name";q=<quota>;w=<window>`
and `"name";r=<remaining>;t=<seconds until full>`).
"""

from __future__ import annotations

import math

from cortiware.ratelimit.gcra import Decision

__all__ = ["rate_limit_headers", "retry_after_seconds"]


def retry_after_seconds(decision: Decision) -> int:
    """Whole seconds a refused client should wait (at least 1)."""
    return max(1, math.ceil(decision.retry_after))


def rate_limit_headers(group: str, period: int, decision: Decision) -> list[tuple[bytes, bytes]]:
    """The raw header pairs describing `decision` for policy `group` (window `period` s)."""
    reset = str(math.ceil(decision.reset_after)).encode()
    remaining = str(decision.remaining).encode()
    limit = str(decision.limit).encode()
    headers = [
        (b"ratelimit-policy", b'"%s";q=%s;w=%d' % (group.encode(), limit, period)),
        (b"ratelimit", b'"%s";r=%s;t=%s' % (group.encode(), remaining, reset)),
        (b"ratelimit-limit", limit),
        (b"ratelimit-remaining", remaining),
        (b"ratelimit-reset", reset),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(retry_after_seconds(decision)).encode()))
    return headers
