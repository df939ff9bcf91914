"""`/api/accountant`: subscriptions (JSON and CSV) and revenue, for accountants and providers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth import Role, require_roles
from cortiware.portals.schemas import Revenue, SubscriptionRow
from cortiware.portals.service import MRR_STATUSES, AccountantReports, monthly_cents

__all__ = [
    "MRR_STATUSES",
    "AccountantController",
    "Revenue",
    "SubscriptionRow",
    "monthly_cents",
    "provide_reports",
]


def provide_reports(read_session: NamedDependency[AsyncSession]) -> AccountantReports:
    """DI provider: the accountant's reports on a read session (the replica when configured:
    `cortiware.db.replica`)."""
    return AccountantReports(session=read_session)


_DEPENDENCIES: Final = {"reports": Provide(provide_reports, sync_to_thread=False)}


class AccountantController(Controller):
    """Subscriptions and revenue (accountant and provider)."""

    path = "/api/accountant"
    tags = ["accountant"]
    guards = [require_roles(Role.ACCOUNTANT, Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @get("/subscriptions", summary="Subscriptions, optionally by status or organization")
    async def subscriptions(
        self,
        reports: NamedDependency[AccountantReports],
        status: FromQuery[str | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[SubscriptionRow]:
        """Most recently updated first."""
        return await reports.subscriptions(status, organization_id)

    @get("/subscriptions.csv", summary="The same list as CSV", media_type="text/csv")
    async def subscriptions_csv(
        self,
        reports: NamedDependency[AccountantReports],
        status: FromQuery[str | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
    ) -> Response[str]:
        """`text/csv` with a header row; same filters and order as the JSON list."""
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return Response(
            await reports.subscriptions_csv(status, organization_id),
            media_type="text/csv",  # Litestar appends `; charset=utf-8` to every text/ type
            headers={
                "Content-Disposition": f'attachment; filename="subscriptions-{stamp}.csv"',
                "Cache-Control": "no-store",
            },
        )

    @get("/revenue", summary="MRR and subscription counts by status")
    async def revenue(self, reports: NamedDependency[AccountantReports]) -> Revenue:
        """MRR per currency over `active` and `past_due` subscriptions; counts of every status."""
        return await reports.revenue()
