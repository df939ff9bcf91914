"""Rate limiting: GCRA on Redis (one EVALSHA per decision), exact across workers.

Modules: `gcra` (algorithm, Redis script and in-memory twin), `policy` (groups, limits and
bucket subjects), `headers` (IETF draft + legacy headers) and `middleware`
(`RateLimitMiddleware`; keys a logged-in caller's bucket by the principal id the session
middleware puts into the scope).
"""

from __future__ import annotations

from cortiware.ratelimit.gcra import Decision, GCRALimiter, MemoryGCRA
from cortiware.ratelimit.middleware import RATE_LIMITER, RateLimitMiddleware
from cortiware.ratelimit.policy import GroupName, RateLimitPolicy, rate_limit_subject

__all__ = [
    "RATE_LIMITER",
    "Decision",
    "GCRALimiter",
    "GroupName",
    "MemoryGCRA",
    "RateLimitMiddleware",
    "RateLimitPolicy",
    "rate_limit_subject",
]
