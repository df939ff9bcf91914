"""Liveness and readiness: `/api/health/live` and `/api/health` (contract §3 "Health")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Final, Literal

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cortiware import __version__
from cortiware.app_state import SETTINGS
from cortiware.db.session import DB_ENGINE
from cortiware.kv import KV_STATE, redis_status
from cortiware.route_policy import UNLIMITED
from cortiware.settings import Settings

__all__ = ["health", "live"]

DATABASE_TIMEOUT: Final = 1.5
CheckResult = Literal["ok", "down", "memory", "degraded"]


@get("/api/health/live", tags=["health"], summary="Liveness", sync_to_thread=False, opt=UNLIMITED)
def live() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@get("/api/health", tags=["health"], summary="Readiness with dependency checks", opt=UNLIMITED)
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
        "version": __version__,
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
