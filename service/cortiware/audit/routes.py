"""`/api/provider/audit`: the audit log and its retention (provider only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit.query import AuditFilter, Cursor, list_entries
from cortiware.audit.recorder import record
from cortiware.audit.retention import (
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    effective_retention_days,
)
from cortiware.auth import Principal, Role, require_roles
from cortiware.db.base import to_utc
from cortiware.db.models import AuditEntry, MonetizationConfig
from cortiware.errors import BadRequest
from cortiware.route_policy import declare

__all__ = ["AuditController", "AuditEntryOut", "AuditPage", "Retention"]


class AuditEntryOut(msgspec.Struct):
    """One audit row as served by the API."""

    id: int
    created_at: datetime
    actor: str
    role: str
    organization_id: uuid.UUID | None
    entity: str
    entity_id: str | None
    action: str
    changes: dict[str, Any]
    ip: str | None
    user_agent: str | None
    request_id: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        """Build from a row."""
        return cls(
            id=entry.id,
            created_at=entry.created_at,
            actor=entry.actor,
            role=entry.role,
            organization_id=entry.organization_id,
            entity=entry.entity,
            entity_id=entry.entity_id,
            action=entry.action,
            changes=entry.changes,
            ip=entry.ip,
            user_agent=entry.user_agent,
            request_id=entry.request_id,
        )


class AuditPage(msgspec.Struct):
    """A page of entries, newest first; `next_cursor` is null on the last page."""

    items: list[AuditEntryOut]
    next_cursor: str | None


class Retention(msgspec.Struct, forbid_unknown_fields=True):
    """Days audit rows are kept (1-3650)."""

    days: Annotated[int, msgspec.Meta(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS)]


class AuditController(Controller):
    """The audit log API."""

    path = "/api/provider/audit"
    tags = ["audit"]
    guards = [require_roles(Role.PROVIDER)]

    @get(
        "/",
        summary="Audit entries, newest first (keyset pagination)",
        opt=declare(errors={400: "A cursor this API did not return, or a naive time."}),
    )
    async def list_audit(
        self,
        *,
        db_session: NamedDependency[AsyncSession],
        entity: FromQuery[str | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
        action: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> AuditPage:
        """Entries matching every given filter; pass `next_cursor` back for the next page."""
        bounds: dict[str, datetime | None] = {"since": since, "until": until}
        for name, bound in bounds.items():
            if bound is not None:
                try:
                    bounds[name] = to_utc(bound)
                except ValueError as exc:
                    raise BadRequest(f"`{name}` {exc}.") from None
        filters = AuditFilter(entity, organization_id, action, bounds["since"], bounds["until"])
        after = Cursor.decode(cursor) if cursor else None
        rows, following = await list_entries(db_session, filters, cursor=after, limit=limit)
        return AuditPage(
            items=[AuditEntryOut.of(r) for r in rows],
            next_cursor=following.encode() if following else None,
        )

    @get("/retention", summary="Days audit rows are kept")
    async def get_retention(
        self, db_session: NamedDependency[AsyncSession], state: State
    ) -> Retention:
        """The stored retention, else AUDIT_RETENTION_DAYS."""
        days = await effective_retention_days(db_session, state.settings.audit_retention_days)
        return Retention(days=days)

    @put("/retention", summary="Change the days audit rows are kept")
    async def put_retention(
        self,
        data: JSONBody[Retention],
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: Request[Any, Any, Any],
    ) -> Retention:
        """Store the retention; it wins over AUDIT_RETENTION_DAYS from now on."""
        before = await effective_retention_days(db_session, state.settings.audit_retention_days)
        config = await db_session.get(MonetizationConfig, 1, with_for_update=True)
        if config is None:
            config = MonetizationConfig(id=1)
            db_session.add(config)
        config.audit_retention_days = data.days
        await record(
            db_session,
            actor=principal,
            entity="audit_retention",
            entity_id=None,
            action="update",
            before={"days": before},
            after={"days": data.days},
            request=request,
        )
        return Retention(days=data.days)
