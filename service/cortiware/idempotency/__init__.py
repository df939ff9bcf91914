"""Idempotency keys (contract §3 "Idempotency"): an atomic claim per key in Redis.

`IdempotencyStore` (Redis, with `MemoryIdempotencyStore` behind the circuit breaker) keeps
in-progress and completed records; `IdempotencyMiddleware` applies them to POST, PUT, PATCH
and DELETE on every route that does not declare itself exempt (`cortiware.route_policy`).
"""

from __future__ import annotations

from cortiware.idempotency.middleware import (
    IDEMPOTENCY_STORE,
    IdempotencyMiddleware,
    fingerprint,
    valid_key,
)
from cortiware.idempotency.store import (
    COMPLETED_TTL,
    ClaimOutcome,
    ClaimResult,
    IdempotencyStore,
    MemoryIdempotencyStore,
    StoredResponse,
)

__all__ = [
    "COMPLETED_TTL",
    "IDEMPOTENCY_STORE",
    "ClaimOutcome",
    "ClaimResult",
    "IdempotencyMiddleware",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "StoredResponse",
    "fingerprint",
    "valid_key",
]
