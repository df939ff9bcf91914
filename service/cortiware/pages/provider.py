"""`/provider`: organizations, invites and monetization, for the provider role."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.principal import Principal, Role, principal_of
from cortiware.errors import NotFound
from cortiware.monetization.routes import provide_monetization
from cortiware.monetization.schemas import ConfigUpdate, CouponIn, PlanIn, PriceIn
from cortiware.monetization.service import MonetizationService
from cortiware.onboarding.routes import provide_onboarding
from cortiware.onboarding.schemas import InviteIn
from cortiware.organizations.routes import provide_organizations
from cortiware.pages._commands import Outcome, run_command
from cortiware.pages._forms import read_form
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles

__all__ = ["ProviderPages"]

AnyRequest = Request[Any, Any, Any]

_INTEGER = re.compile(r"-?[0-9]{1,9}")


def _fields(form: FormMultiDict, *names: str, numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The non-empty form fields among `names`; `numbers` are integers when they are."""
    body: dict[str, Any] = {}
    for name in names:
        value = str(form.get(name, "")).strip()
        if not value:
            continue
        # Only plain ASCII integers become numbers (`isdigit` also takes "²" and 5,000-digit
        # runs `int` refuses); anything else stays text, and validation answers its 400.
        body[name] = int(value) if name in numbers and _INTEGER.fullmatch(value) else value
    return body


def _provider(request: AnyRequest) -> Principal:
    principal = principal_of(request)
    assert principal is not None  # the guard let only providers in
    return principal


class ProviderPages(Controller):
    """The provider dashboard and its forms; each form runs the domain service's command."""

    path = "/provider"
    guards = [require_page_roles(Role.PROVIDER)]

    async def _page(
        self,
        request: AnyRequest,
        *,
        status: int = 200,
        notice: str | None = None,
        error: str | None = None,
        headers: dict[str, str] | None = None,
        created_invite: Any = None,
    ) -> Template:
        async def read(session: AsyncSession) -> dict[str, Any]:
            state = request.app.state
            monetization = provide_monetization(session, state)
            return {
                "organizations": await provide_organizations(session, state).summaries(),
                "invites": await provide_onboarding(session, state).invites(),
                "config": await monetization.config(),
                "plans": await monetization.plans(),
                "coupons": await monetization.coupons(),
            }

        data = await run_command(request, read)
        sources = ("organizations", "invites", "config", "plans", "coupons")
        shown = data.body if data.ok else dict.fromkeys(sources)
        return render(request, "provider.html", status=status, notice=notice, error=error,
                      headers=headers, created_invite=created_invite, **shown)  # fmt: skip

    async def _after(
        self, request: AnyRequest, result: Outcome, notice: str, **extra: Any
    ) -> Template:
        if result.ok:
            return await self._page(request, notice=notice, **extra)
        return await self._page(
            request, status=result.status, error=result.detail, headers=result.headers
        )

    async def _monetization(
        self,
        request: AnyRequest,
        form: FormMultiDict,
        call: Callable[[MonetizationService, Principal], Awaitable[Any]],
    ) -> Outcome:
        principal = _provider(request)

        async def command(session: AsyncSession) -> Any:
            return await call(provide_monetization(session, request.app.state), principal)

        return await run_command(request, command, form=form)

    @get("/")
    async def dashboard(self, request: AnyRequest) -> Template:
        """Organizations with their subscription status, invites and monetization forms."""
        return await self._page(request)

    @post("/invites", status_code=200)
    async def invite(self, request: AnyRequest) -> Template:
        """Create an invite; the page shows its accept link once."""
        form = await read_form(request)
        body = _fields(form, "email", "org_name", "plan_code", "expires_in_hours",
                       numbers=("expires_in_hours",))  # fmt: skip
        principal = _provider(request)

        async def command(session: AsyncSession) -> Any:
            onboarding = provide_onboarding(session, request.app.state)
            data = msgspec.convert(body, InviteIn)
            return await onboarding.invite(data, actor=principal, request=request)

        result = await run_command(request, command, form=form)
        return await self._after(
            request, result, "Invite created.", created_invite=result.body if result.ok else None
        )

    @post("/monetization/config", status_code=200)
    async def config(self, request: AnyRequest) -> Template:
        """Update the default plan, trial days and currency."""
        form = await read_form(request)
        body = _fields(form, "default_plan_code", "trial_days", "currency",
                       numbers=("trial_days",))  # fmt: skip
        result = await self._monetization(
            request,
            form,
            lambda service, who: service.update_config(
                msgspec.convert(body, ConfigUpdate), actor=who, request=request
            ),
        )
        return await self._after(request, result, "Monetization settings saved.")

    @post("/plans", status_code=200)
    async def plan(self, request: AnyRequest) -> Template:
        """Create a plan."""
        form = await read_form(request)
        body = _fields(form, "code", "name", "description")
        result = await self._monetization(
            request,
            form,
            lambda service, who: service.create_plan(
                msgspec.convert(body, PlanIn), actor=who, request=request
            ),
        )
        return await self._after(request, result, "Plan created.")

    @post("/prices", status_code=200)
    async def price(self, request: AnyRequest) -> Template:
        """Add a recurring price to a plan."""
        form = await read_form(request)
        raw_plan_id = str(form.get("plan_id", "")).strip()
        body = _fields(form, "amount_cents", "interval", "currency", numbers=("amount_cents",))

        async def add(service: MonetizationService, who: Principal) -> Any:
            try:
                plan_id = uuid.UUID(raw_plan_id)
            except ValueError:
                raise NotFound("No such plan.") from None
            data = msgspec.convert(body, PriceIn)
            return await service.create_price(plan_id, data, actor=who, request=request)

        result = await self._monetization(request, form, add)
        return await self._after(request, result, "Price added.")

    @post("/coupons", status_code=200)
    async def coupon(self, request: AnyRequest) -> Template:
        """Create a coupon (percent or amount off)."""
        form = await read_form(request)
        body = _fields(form, "code", "percent_off", "amount_off_cents", "currency", "duration",
                       numbers=("percent_off", "amount_off_cents"))  # fmt: skip
        result = await self._monetization(
            request,
            form,
            lambda service, who: service.create_coupon(
                msgspec.convert(body, CouponIn), actor=who, request=request
            ),
        )
        return await self._after(request, result, "Coupon created.")
