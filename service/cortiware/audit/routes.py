"""`/api/provider/audit`: the audit log and its retention (provider only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final

from litestar import Controller, Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.audit.schemas import AuditEntryOut, AuditPage, Retention
from cortiware.audit.service import AuditService
from cortiware.auth import Principal, Role, require_roles
from cortiware.cache.read_through import cache_of
from cortiware.route_policy import declare

__all__ = ["AuditController", "AuditEntryOut", "AuditPage", "Retention", "provide_audit"]


def provide_audit(db_session: NamedDependency[AsyncSession], state: State) -> AuditService:
    """DI provider: the audit service on the request's transaction."""
    return AuditService(
        session=db_session,
        default_retention_days=SETTINGS.get(state).audit_retention_days,
        cache=cache_of(state),
    )


def provide_audit_reader(read_session: NamedDependency[AsyncSession], state: State) -> AuditService:
    """DI provider: the audit service on a read session, for listings (the replica when
    configured: `cortiware.db.replica`)."""
    return provide_audit(read_session, state)


_DEPENDENCIES: Final = {
    "audit": Provide(provide_audit, sync_to_thread=False),
    "audit_reader": Provide(provide_audit_reader, sync_to_thread=False),
}


class AuditController(Controller):
    """The audit log API."""

    path = "/api/provider/audit"
    tags = ["audit"]
    guards = [require_roles(Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @get(
        "/",
        summary="Audit entries, newest first (keyset pagination)",
        opt=declare(errors={400: "A cursor this API did not return, or a naive time."}),
    )
    async def list_audit(
        self,
        *,
        audit_reader: NamedDependency[AuditService],
        entity: FromQuery[str | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
        action: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> AuditPage:
        """Entries matching every given filter; pass `next_cursor` back for the next page."""
        return await audit_reader.page(
            entity=entity,
            organization_id=organization_id,
            action=action,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )

    @get("/retention", summary="Days audit rows are kept")
    async def get_retention(self, audit: NamedDependency[AuditService]) -> Retention:
        """The stored retention, else AUDIT_RETENTION_DAYS."""
        return await audit.retention()

    @put("/retention", summary="Change the days audit rows are kept")
    async def put_retention(
        self,
        data: JSONBody[Retention],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
        request: Request[Any, Any, Any],
    ) -> Retention:
        """Store the retention; it wins over AUDIT_RETENTION_DAYS from now on."""
        return await audit.set_retention(data.days, actor=principal, request=request)
