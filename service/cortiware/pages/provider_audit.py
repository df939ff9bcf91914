"""`/provider/audit`: the audit log with filters and cursor paging, newest first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit.query import AuditFilter, Cursor, list_entries
from cortiware.audit.retention import effective_retention_days
from cortiware.auth.principal import Role
from cortiware.auth.routes import settings_of
from cortiware.errors import BadRequest
from cortiware.pages._commands import run_command
from cortiware.pages._provider_forms import AnyRequest
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles
from cortiware.pages.provider import audit_rows

__all__ = ["AuditPages"]

LIMIT: Final = 50
_FILTERS: Final = ("entity", "action", "organization_id", "since", "until")


def _day(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(f"{name}: not a date (YYYY-MM-DD).") from None


def _filter(values: dict[str, str]) -> AuditFilter:
    organization: uuid.UUID | None = None
    if values["organization_id"]:
        try:
            organization = uuid.UUID(values["organization_id"])
        except ValueError:
            raise BadRequest("organization_id: not an organization id.") from None
    until = _day(values["until"], "until")
    return AuditFilter(
        entity=values["entity"] or None,
        action=values["action"] or None,
        organization_id=organization,
        since=_day(values["since"], "since"),
        until=until + timedelta(days=1) if until else None,  # the `until` day is included
    )


class AuditPages(Controller):
    """The audit log viewer (the retention is set on `/provider/settings`)."""

    path = "/provider/audit"
    guards = [require_page_roles(Role.PROVIDER)]

    @get("/")
    async def audit(self, request: AnyRequest) -> Template:
        """One page of entries matching the filters; `cursor` continues where it stopped."""
        values = {name: request.query_params.get(name, "").strip() for name in _FILTERS}
        raw_cursor = request.query_params.get("cursor", "")

        async def read(session: AsyncSession) -> Any:
            cursor = Cursor.decode(raw_cursor) if raw_cursor else None
            entries, after = await list_entries(
                session, _filter(values), cursor=cursor, limit=LIMIT
            )
            retention = await effective_retention_days(
                session, settings_of(request).audit_retention_days
            )
            return {
                "entries": audit_rows(entries),
                "next_cursor": after.encode() if after else None,
                "retention_days": retention,
            }

        result = await run_command(request, read)
        shown = result.body if result.ok else {"entries": [], "next_cursor": None}
        kept = {k: v for k, v in values.items() if v}
        next_url = None
        if shown.get("next_cursor"):
            next_url = "/provider/audit?" + urlencode({**kept, "cursor": shown["next_cursor"]})
        return render(request, "provider/audit.html", status=result.status if not result.ok
                      else 200, error=None if result.ok else result.detail, values=values,
                      next_url=next_url, first_url="/provider/audit?" + urlencode(kept)
                      if raw_cursor else None, **shown)  # fmt: skip
