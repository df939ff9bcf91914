"""The audit service: the log's query and the retention setting.

The retention is stored on the global config row, and the cached global config shows it
(`audit_retention_days`), so changing it invalidates that cache after the commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit.query import AuditFilter, Cursor, list_entries
from cortiware.audit.recorder import Actor, record
from cortiware.audit.retention import effective_retention_days
from cortiware.audit.schemas import AuditEntryOut, AuditPage, Retention
from cortiware.auth import Principal
from cortiware.cache import GROUP_MONETIZATION, Cache
from cortiware.cache.read_through import invalidate_after_commit
from cortiware.db.base import to_utc
from cortiware.db.models import MonetizationConfig
from cortiware.errors import BadRequest

__all__ = ["AuditService"]


class AuditService:
    """The audit log and its retention, in the caller's transaction (`session`)."""

    __slots__ = ("cache", "default_retention_days", "session")

    def __init__(
        self, *, session: AsyncSession, default_retention_days: int, cache: Cache | None = None
    ) -> None:
        self.session = session
        self.default_retention_days = default_retention_days
        """`AUDIT_RETENTION_DAYS`: the retention until one is stored."""
        self.cache = cache

    async def page(
        self,
        *,
        entity: str | None = None,
        organization_id: uuid.UUID | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """Entries matching every given filter, newest first, and the next page's cursor.

        Raises:
            BadRequest: a bound outside what UTC can express, or a bad cursor (400).
        """
        bounds: dict[str, datetime | None] = {"since": since, "until": until}
        for name, bound in bounds.items():
            if bound is not None:
                try:
                    bounds[name] = to_utc(bound)
                except ValueError as exc:
                    raise BadRequest(f"`{name}` {exc}.") from None
        filters = AuditFilter(entity, organization_id, action, bounds["since"], bounds["until"])
        after = Cursor.decode(cursor) if cursor else None
        rows, following = await list_entries(self.session, filters, cursor=after, limit=limit)
        return AuditPage(
            items=[AuditEntryOut.of(r) for r in rows],
            next_cursor=following.encode() if following else None,
        )

    async def retention(self) -> Retention:
        """The stored retention, else the default."""
        return Retention(days=await self._days())

    async def set_retention(
        self,
        days: int,
        *,
        actor: Principal | Actor,
        request: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> Retention:
        """Store the retention; it wins over the default from now on."""
        before = await self._days()
        config = await self.session.get(MonetizationConfig, 1, with_for_update=True)
        if config is None:
            config = MonetizationConfig(id=1)
            self.session.add(config)
        config.audit_retention_days = days
        await record(
            self.session,
            actor=actor,
            entity="audit_retention",
            entity_id=None,
            action="update",
            before={"days": before},
            after={"days": days},
            request=request,
        )
        invalidate_after_commit(self.session, self.cache, GROUP_MONETIZATION)
        return Retention(days=days)

    async def _days(self) -> int:
        return await effective_retention_days(self.session, self.default_retention_days)
