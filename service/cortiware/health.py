"""Health: `/api/health/live`, `/api/health/ready` and `/api/health` (contract §3 "Health").

| path | checks | asked by | 503 when |
| --- | --- | --- | --- |
| `/api/health/live` | nothing | container HEALTHCHECK | never (no answer = dead) |
| `/api/health/ready` | this process's config | load balancer target group | config incomplete |
| `/api/health` | database, Redis, config | canary, smoke, operators | database or config down |

The load balancer asks `ready`, not `/api/health`: during a database outage every task is
equally unable to reach it, so replacing tasks cures nothing and a replacement loop only
adds start-up load when the database returns. Routes answer 503 problem+json meanwhile, and
the canary and alarms (which read `/api/health`) page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Final, Literal

from litestar import HttpMethod, Response
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.types import Middleware
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cortiware.app_state import SETTINGS
from cortiware.db.session import DB_ENGINE
from cortiware.kv import KV_STATE, redis_status
from cortiware.middleware.pipeline import RequestPipeline
from cortiware.route_policy import PROBE
from cortiware.settings import Settings

__all__ = ["PROBES", "health", "live", "probe", "ready"]

DATABASE_TIMEOUT: Final = 1.5
CheckResult = Literal["ok", "down", "memory", "degraded"]


class probe(HTTPRouteHandler):
    """A GET route decorator (named as Litestar's `get`) for a health probe: its route runs
    without the `RequestPipeline` when no stage of it has work there (`PROBE` declares no
    input, no limit, no session), so that the probe's route is its handler alone, without
    even the exception layer Litestar puts under any route middleware. The request context
    (id, access line, headers) runs around routing and is unaffected."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path, http_method=HttpMethod.GET, **kwargs)

    def resolve_middleware(self) -> list[Middleware]:
        return [
            middleware
            for middleware in super().resolve_middleware()
            if not (isinstance(middleware, RequestPipeline) and not middleware.applies_to(self))
        ]


@probe("/api/health/live", tags=["health"], summary="Liveness", sync_to_thread=False, opt=PROBE)
def live() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@probe(
    "/api/health/ready",
    tags=["health"],
    summary="Readiness for the load balancer",
    sync_to_thread=False,
    opt=PROBE,
)
def ready(state: State) -> Response[dict[str, str]]:
    """200 `ready` when this process can serve requests; no dependency is checked."""
    settings = SETTINGS.get(state)
    status, code = ("ready", 200) if _config_complete(settings) else ("unready", 503)
    return Response(
        {"status": status, "version": settings.app_version},
        status_code=code,
        headers={"Cache-Control": "no-store"},
    )


@probe("/api/health", tags=["health"], summary="Dependency checks", opt=PROBE)
async def health(state: State) -> Response[dict[str, Any]]:
    """Check database, Redis and config concurrently, each under its own timeout."""
    settings = SETTINGS.get(state)
    database, redis = await asyncio.gather(
        _timed(_check_database(DB_ENGINE.get(state)), DATABASE_TIMEOUT),
        redis_status(KV_STATE.get(state)),
    )
    config: CheckResult = "ok" if _config_complete(settings) else "down"
    if database != "ok" or config != "ok":
        status, code = "unhealthy", 503
    elif redis in ("down", "degraded"):
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    body = {
        "status": status,
        "checks": {"database": database, "redis": redis, "config": config},
        "version": settings.app_version,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    return Response(body, status_code=code, headers={"Cache-Control": "no-store"})


async def _timed(check: Awaitable[CheckResult], limit: float) -> CheckResult:
    try:
        return await asyncio.wait_for(check, limit)
    except Exception:
        return "down"


async def _check_database(engine: AsyncEngine) -> CheckResult:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return "ok"


def _config_complete(settings: Settings) -> bool:
    # Start-up validation already refused a bad deployed config; this guards the invariant.
    if settings.app_env.is_deployed:
        return bool(settings.redis_url) and not settings.uses_dev_defaults
    return True


PROBES: Final = (live, ready, health)
"""The health routes (`PROBE`: no pipeline stage has work on them)."""
