"""Bodies of the audit API: entries, a page of them, the retention."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from cortiware.audit.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS
from cortiware.db.models import AuditEntry

__all__ = ["AuditEntryOut", "AuditPage", "Retention"]


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
