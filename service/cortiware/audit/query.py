"""Reading the audit log: filters and keyset pagination, newest first.

The cursor is opaque to clients: base64url of `[created_at, id]` of the last row served.
Keyset pagination on `(created_at, id)` stays stable while new rows arrive and costs the
same on page 1000 as on page 1.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db.base import to_utc
from cortiware.db.models import AuditEntry
from cortiware.errors import BadRequest

__all__ = ["AuditFilter", "Cursor", "list_entries"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after which the next page starts."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        """The opaque string handed to clients."""
        raw = json.dumps([self.created_at.isoformat(), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Parse a cursor from `encode`; raise BadRequest for anything else."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            created, entry_id = json.loads(raw)
            at = to_utc(datetime.fromisoformat(created))
            # bool is an int to Python; ids are positive bigints.
            if type(entry_id) is not int or not 0 < entry_id < 2**63:
                raise ValueError("bad cursor")
        except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
            raise BadRequest("The cursor is not one this API returned.") from exc
        return cls(created_at=at, id=entry_id)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Optional filters of `GET /api/provider/audit`; None means any."""

    entity: str | None = None
    organization_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    """Inclusive lower bound on `created_at`."""
    until: datetime | None = None
    """Exclusive upper bound on `created_at`."""


async def list_entries(
    session: AsyncSession, filters: AuditFilter, *, cursor: Cursor | None, limit: int
) -> tuple[list[AuditEntry], Cursor | None]:
    """One page of entries, newest first, and the cursor of the next page (None at the end)."""
    query = select(AuditEntry)
    if filters.entity is not None:
        query = query.where(AuditEntry.entity == filters.entity)
    if filters.organization_id is not None:
        query = query.where(AuditEntry.organization_id == filters.organization_id)
    if filters.action is not None:
        query = query.where(AuditEntry.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEntry.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.created_at < filters.until)
    if cursor is not None:
        query = query.where(
            or_(
                AuditEntry.created_at < cursor.created_at,
                and_(AuditEntry.created_at == cursor.created_at, AuditEntry.id < cursor.id),
            )
        )
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    return page, Cursor(created_at=last.created_at, id=last.id)
