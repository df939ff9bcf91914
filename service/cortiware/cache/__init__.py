"""Read-through cache on Redis with cross-instance invalidation and single flight.

Handlers receive the app's `Cache` as the `cache` dependency (`CACHE` in `app.state`)::

    plans = await cache.cached("plans:active", TTL_PLANS, load_plans, type_=list[PlanOut])
    await cache.invalidate("plans")  # after every write to plans or prices

Groups in use and their TTLs: `monetization` (global config, 5 min), `plans` (plans and
prices, 10 min), `organizations` (5 min).
"""

from __future__ import annotations

from typing import Final

from cortiware.app_state import StateKey
from cortiware.cache.cache import Cache, group_of

__all__ = [
    "CACHE",
    "CACHE_STATE_KEY",
    "GROUP_MONETIZATION",
    "GROUP_ORGANIZATIONS",
    "GROUP_PLANS",
    "TTL_MONETIZATION",
    "TTL_ORGANIZATIONS",
    "TTL_PLANS",
    "Cache",
    "group_of",
]

CACHE: Final = StateKey("cache", Cache)
"""`app.state` entry of the app's `Cache`, created in the app lifespan."""
CACHE_STATE_KEY: Final = CACHE.name
"""The name of `CACHE`, for code that reads `app.state` by name."""
GROUP_MONETIZATION: Final = "monetization"
"""The global monetization config (it shows the effective audit retention)."""
GROUP_PLANS: Final = "plans"
"""Plans and their prices."""
GROUP_ORGANIZATIONS: Final = "organizations"
"""Organizations with their owners and subscription status."""
TTL_MONETIZATION: Final = 300.0
TTL_PLANS: Final = 600.0
TTL_ORGANIZATIONS: Final = 300.0
