"""`/owner`: the owner's organization, subscription and the billing portal button."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from cortiware.auth.principal import Role
from cortiware.pages._api import call_api, read_form
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles

__all__ = ["OwnerPages"]


class OwnerPages(Controller):
    """The owner's portal page."""

    path = "/owner"
    guards = [require_page_roles(Role.OWNER)]

    async def _page(
        self, request: Request[Any, Any, Any], *, status: int = 200, error: str | None = None
    ) -> Template:
        organization, subscription = await asyncio.gather(
            call_api(request, "GET", "/api/owner/organization"),
            call_api(request, "GET", "/api/owner/subscription"),
        )
        return render(
            request,
            "owner.html",
            status=status,
            error=error,
            organization=organization.body if organization.ok else None,
            subscription=subscription.body if subscription.ok else None,
        )

    @get("/")
    async def dashboard(self, request: Request[Any, Any, Any]) -> Template:
        """Organization and subscription."""
        return await self._page(request)

    @post("/billing/portal", status_code=303)
    async def billing_portal(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Open the Stripe Billing Portal (303 to it), or show why it cannot open."""
        form = await read_form(request)
        result = await call_api(
            request,
            "POST",
            "/api/owner/billing/portal",
            idempotency_key=str(form.get("_form_key", "")) or None,
        )
        url = result.body.get("url") if result.ok and isinstance(result.body, dict) else None
        if isinstance(url, str) and url.startswith("https://"):
            return Redirect(url, status_code=303)
        return await self._page(request, status=result.status if not result.ok else 502,
                                error=result.detail)  # fmt: skip
