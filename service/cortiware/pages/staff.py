"""`/developer` (diagnostics) and `/accountant` (revenue, subscriptions): staff pages.

The provider may open both, as the API lets it.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.principal import Role
from cortiware.auth.routes import settings_of
from cortiware.kv import KV_STATE, redis_status
from cortiware.pages._commands import run_command
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles
from cortiware.portals.service import MRR_STATUSES, AccountantReports, DeveloperDiagnostics

__all__ = ["AccountantPages", "DeveloperPages"]

AnyRequest = Request[Any, Any, Any]
_STATUSES = ("trialing", "active", "past_due", "unpaid", "canceled", "incomplete")


class DeveloperPages(Controller):
    """Health, version, migrations, configured features and recent webhook deliveries."""

    path = "/developer"
    guards = [require_page_roles(Role.DEVELOPER, Role.PROVIDER)]

    @get("/")
    async def page(self, request: AnyRequest) -> Template:
        """The diagnostics page."""

        async def redis() -> str:
            return await redis_status(KV_STATE.get(request.app.state))

        async def read(session: AsyncSession) -> Any:
            service = DeveloperDiagnostics(
                session=session, settings=settings_of(request), redis_status=redis
            )
            return {
                "diagnostics": await service.snapshot(),
                "deliveries": await service.recent_deliveries(limit=25),
            }

        result = await run_command(request, read)
        shown = result.body if result.ok else {"diagnostics": None, "deliveries": []}
        return render(request, "developer.html", status=200 if result.ok else result.status,
                      error=None if result.ok else result.detail, **shown)  # fmt: skip


class AccountantPages(Controller):
    """MRR and subscriptions with organization names, filterable, with the CSV export."""

    path = "/accountant"
    guards = [require_page_roles(Role.ACCOUNTANT, Role.PROVIDER)]

    @get("/")
    async def page(self, request: AnyRequest) -> Template:
        """Revenue and the subscription list (`status` filters it)."""
        status = request.query_params.get("status", "").strip()
        status = status if status in _STATUSES else ""

        async def read(session: AsyncSession) -> Any:
            reports = AccountantReports(session=session)
            names = await reports.organization_names()
            rows = await reports.subscriptions(status or None, None)
            return {
                "revenue": await reports.revenue(),
                "subscriptions": [
                    {**_builtins(row), "organization_name": names.get(row.organization_id)}
                    for row in rows
                ],
            }

        result = await run_command(request, read)
        shown = result.body if result.ok else {"revenue": None, "subscriptions": []}
        return render(request, "accountant.html", status=200 if result.ok else result.status,
                      error=None if result.ok else result.detail, statuses=_STATUSES,
                      status_filter=status, mrr_statuses=sorted(MRR_STATUSES),
                      **shown)  # fmt: skip


def _builtins(row: Any) -> dict[str, Any]:
    return {field: getattr(row, field) for field in row.__struct_fields__}
