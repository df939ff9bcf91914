"""`/provider`: the provider console's organizations and invites (create, list, revoke).

Plans, prices, coupons and the global settings are in `provider_catalog.py`; the audit log
in `provider_audit.py`. Every form follows Post/Redirect/Get (`_provider_forms.submit`).
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Final

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit.query import AuditFilter, list_entries
from cortiware.auth.principal import Role
from cortiware.errors import NotFound
from cortiware.monetization.routes import provide_monetization
from cortiware.onboarding.routes import provide_onboarding
from cortiware.onboarding.schemas import InviteIn
from cortiware.organizations.routes import provide_organizations
from cortiware.pages._commands import run_command
from cortiware.pages._forms import read_form
from cortiware.pages._provider_forms import AnyRequest, fields, provider, submit
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles

__all__ = ["PAGE_SIZE", "ProviderPages", "audit_rows"]

PAGE_SIZE: Final = 25


def audit_rows(entries: list[Any]) -> list[dict[str, Any]]:
    """Audit rows as the templates show them."""
    return [
        {
            "id": e.id,
            "created_at": e.created_at,
            "actor": e.actor,
            "role": e.role,
            "organization_id": str(e.organization_id) if e.organization_id else None,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "action": e.action,
            "changes": e.changes,
            "ip": e.ip,
            "request_id": e.request_id,
        }
        for e in entries
    ]


class ProviderPages(Controller):
    """Organizations (searchable, paged, with detail) and invites."""

    path = "/provider"
    guards = [require_page_roles(Role.PROVIDER)]

    @get("/")
    async def organizations(self, request: AnyRequest) -> Template:
        """Organizations with owner, plan and subscription status; `q` searches, `page` pages."""
        query = request.query_params.get("q", "").strip()
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1

        async def read(session: AsyncSession) -> Any:
            return await provide_organizations(session, request.app.state).summaries()

        result = await run_command(request, read)
        rows: list[dict[str, Any]] = result.body if result.ok else []
        needle = query.casefold()
        if needle:
            rows = [
                r
                for r in rows
                if needle in r["name"].casefold() or needle in (r["owner_email"] or "").casefold()
            ]
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        page = min(page, pages)
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return render(request, "provider/organizations.html", organizations=shown,
                      total=len(rows), q=query, page=page, pages=pages,
                      error=None if result.ok else result.detail)  # fmt: skip

    @get("/organizations/{organization_id:uuid}")
    async def organization(
        self, request: AnyRequest, organization_id: FromPath[uuid.UUID]
    ) -> Template:
        """One organization: owners, current subscription and its audit trail."""

        async def read(session: AsyncSession) -> Any:
            detail = await provide_organizations(session, request.app.state).detail(organization_id)
            entries, _ = await list_entries(
                session, AuditFilter(organization_id=organization_id), cursor=None, limit=20
            )
            return {"organization": detail, "audit": audit_rows(entries)}

        result = await run_command(request, read)
        if not result.ok:
            return render(request, "error.html", status=result.status, message=result.detail)
        return render(request, "provider/organization.html", **result.body)

    async def _invites(
        self,
        request: AnyRequest,
        *,
        status: int = 200,
        error: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        failed: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        async def read(session: AsyncSession) -> Any:
            state = request.app.state
            return {
                "invites": await provide_onboarding(session, state).invites(),
                "plans": await provide_monetization(session, state).plans(),
            }

        data = await run_command(request, read)
        shown = data.body if data.ok else {"invites": [], "plans": []}
        return render(request, "provider/invites.html", status=status, headers=headers,
                      error=error, errors=errors or {}, values=values or {}, failed=failed,
                      **shown)  # fmt: skip

    @get("/invites")
    async def invites(self, request: AnyRequest) -> Template:
        """Invites (newest first) and the form to create one."""
        return await self._invites(request)

    @post("/invites", status_code=303)
    async def invite(self, request: AnyRequest) -> Response[Any]:
        """Create an invite; its accept link is shown once, on the next page."""
        form = await read_form(request)
        body = fields(form, "email", "org_name", "plan_code", "expires_in_hours",
                      numbers=("expires_in_hours",))  # fmt: skip
        who = provider(request)

        async def command(session: AsyncSession) -> Any:
            onboarding = provide_onboarding(session, request.app.state)
            return await onboarding.invite(
                msgspec.convert(body, InviteIn), actor=who, request=request
            )

        return await submit(
            request,
            form,
            command,
            name="invite",
            done=lambda made: f"Invite created for {made['email']}.",
            to="/provider/invites",
            rerender=lambda **kw: self._invites(request, **kw),
            flash=lambda made: {
                "invite": {k: made[k] for k in ("email", "org_name", "accept_url", "expires_at")}
            },
        )

    @post("/invites/{invite_id:str}/revoke", status_code=303)
    async def revoke_invite(self, request: AnyRequest, invite_id: FromPath[str]) -> Response[Any]:
        """Revoke an open invite: its link stops working (the invitee sees "revoked")."""
        form = await read_form(request)
        who = provider(request)

        async def command(session: AsyncSession) -> Any:
            try:
                wanted = uuid.UUID(invite_id)
            except ValueError:
                raise NotFound("No such invite.") from None
            onboarding = provide_onboarding(session, request.app.state)
            return await onboarding.revoke(wanted, actor=who, request=request)

        return await submit(
            request,
            form,
            command,
            name=f"revoke-{invite_id}",
            done=lambda revoked: (
                f"Invite for {revoked['email']} revoked; its link no longer works."
            ),
            to="/provider/invites",
            rerender=lambda **kw: self._invites(request, **kw),
        )
