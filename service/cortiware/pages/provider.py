"""`/provider`: organizations, invites and monetization, for the provider role."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import Template

from cortiware.auth.principal import Role
from cortiware.pages._api import ApiResult, call_api, read_form
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles

__all__ = ["ProviderPages"]

_SOURCES = {
    "organizations": "/api/provider/organizations",
    "invites": "/api/provider/invites",
    "config": "/api/provider/monetization/config",
    "plans": "/api/provider/plans",
    "coupons": "/api/provider/coupons",
}


_INTEGER = re.compile(r"-?[0-9]{1,9}")


def _fields(form: FormMultiDict, *names: str, numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The non-empty form fields among `names`; `numbers` are sent as integers when they are."""
    body: dict[str, Any] = {}
    for name in names:
        value = str(form.get(name, "")).strip()
        if not value:
            continue
        # Only plain ASCII integers become numbers (`isdigit` also takes "²" and 5,000-digit
        # runs `int` refuses); anything else goes as text, and the API answers its 400.
        body[name] = int(value) if name in numbers and _INTEGER.fullmatch(value) else value
    return body


class ProviderPages(Controller):
    """The provider dashboard and its forms; each form posts through the JSON API."""

    path = "/provider"
    guards = [require_page_roles(Role.PROVIDER)]

    async def _page(
        self,
        request: Request[Any, Any, Any],
        *,
        status: int = 200,
        notice: str | None = None,
        error: str | None = None,
        created_invite: Any = None,
    ) -> Template:
        results = await asyncio.gather(*(call_api(request, "GET", p) for p in _SOURCES.values()))
        data = {name: r.body if r.ok else None for name, r in zip(_SOURCES, results, strict=True)}
        return render(
            request,
            "provider.html",
            status=status,
            notice=notice,
            error=error,
            created_invite=created_invite,
            **data,
        )

    async def _after(
        self, request: Request[Any, Any, Any], result: ApiResult, notice: str, **extra: Any
    ) -> Template:
        if result.ok:
            return await self._page(request, notice=notice, **extra)
        return await self._page(request, status=result.status, error=result.detail)

    @get("/")
    async def dashboard(self, request: Request[Any, Any, Any]) -> Template:
        """Organizations with their subscription status, invites and monetization forms."""
        return await self._page(request)

    @post("/invites", status_code=200)
    async def invite(self, request: Request[Any, Any, Any]) -> Template:
        """Create an invite; the page shows its accept link once."""
        form = await read_form(request)
        body = _fields(form, "email", "org_name", "plan_code", "expires_in_hours",
                       numbers=("expires_in_hours",))  # fmt: skip
        result = await call_api(
            request, "POST", "/api/provider/invites", json=body, idempotency_key=_key(form)
        )
        return await self._after(
            request, result, "Invite created.", created_invite=result.body if result.ok else None
        )

    @post("/monetization/config", status_code=200)
    async def config(self, request: Request[Any, Any, Any]) -> Template:
        """Update the default plan, trial days and currency."""
        form = await read_form(request)
        body = _fields(form, "default_plan_code", "trial_days", "currency",
                       numbers=("trial_days",))  # fmt: skip
        result = await call_api(
            request,
            "PUT",
            "/api/provider/monetization/config",
            json=body,
            idempotency_key=_key(form),
        )
        return await self._after(request, result, "Monetization settings saved.")

    @post("/plans", status_code=200)
    async def plan(self, request: Request[Any, Any, Any]) -> Template:
        """Create a plan."""
        form = await read_form(request)
        body = _fields(form, "code", "name", "description")
        result = await call_api(
            request, "POST", "/api/provider/plans", json=body, idempotency_key=_key(form)
        )
        return await self._after(request, result, "Plan created.")

    @post("/prices", status_code=200)
    async def price(self, request: Request[Any, Any, Any]) -> Template:
        """Add a recurring price to a plan."""
        form = await read_form(request)
        plan_id = str(form.get("plan_id", "")).strip()
        body = _fields(form, "amount_cents", "interval", "currency", numbers=("amount_cents",))
        result = await call_api(
            request,
            "POST",
            f"/api/provider/plans/{quote(plan_id, safe='')}/prices",
            json=body,
            idempotency_key=_key(form),
        )
        return await self._after(request, result, "Price added.")

    @post("/coupons", status_code=200)
    async def coupon(self, request: Request[Any, Any, Any]) -> Template:
        """Create a coupon (percent or amount off)."""
        form = await read_form(request)
        body = _fields(form, "code", "percent_off", "amount_off_cents", "currency", "duration",
                       numbers=("percent_off", "amount_off_cents"))  # fmt: skip
        result = await call_api(
            request, "POST", "/api/provider/coupons", json=body, idempotency_key=_key(form)
        )
        return await self._after(request, result, "Coupon created.")


def _key(form: FormMultiDict) -> str | None:
    value = str(form.get("_form_key", "")).strip()
    return value or None
