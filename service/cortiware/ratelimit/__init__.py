"""Rate limiting: GCRA on Redis (one EVALSHA per decision), exact across workers.

Modules: `gcra` (algorithm, Redis script and in-memory twin), `policy` (groups and limits),
`client_ip` (`TRUSTED_PROXIES` handling), `headers` (IETF draft + legacy headers) and
`middleware` (`RateLimitMiddleware`; reads the principal from
`scope["cortiware_principal"]`).
"""

from __future__ import annotations

from cortiware.ratelimit.client_ip import client_ip
from cortiware.ratelimit.gcra import Decision, GCRALimiter, MemoryGCRA
from cortiware.ratelimit.middleware import (
    PRINCIPAL_SCOPE_KEY,
    RATE_LIMITER_STATE_KEY,
    RateLimitMiddleware,
    principal_of,
)
from cortiware.ratelimit.policy import GroupName, RateLimitPolicy, resolve_group

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "RATE_LIMITER_STATE_KEY",
    "Decision",
    "GCRALimiter",
    "GroupName",
    "MemoryGCRA",
    "RateLimitMiddleware",
    "RateLimitPolicy",
    "client_ip",
    "principal_of",
    "resolve_group",
]
