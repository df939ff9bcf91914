"""`/provider/plans`, `/provider/coupons`, `/provider/settings`: what the provider sells.

Plans (create, edit name/description/features/active, delete), their prices (add, edit,
archive, link to their Stripe price), coupons
(percent or amount off, limits, expiry, delete) and the global settings (default plan,
trial days, currency, audit retention). Each form follows Post/Redirect/Get.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.principal import Role
from cortiware.errors import NotFound
from cortiware.monetization.routes import provide_monetization
from cortiware.monetization.schemas import (
    ConfigUpdate,
    CouponIn,
    PlanIn,
    PlanPatch,
    PriceIn,
    PricePatch,
)
from cortiware.pages._commands import run_command
from cortiware.pages._forms import read_form
from cortiware.pages._provider_forms import AnyRequest, fields, submit, with_monetization
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles

__all__ = ["CatalogPages"]


def _features(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _plan_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such plan.") from None


def _price_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such price.") from None


class CatalogPages(Controller):
    """Plans, prices, coupons and the global monetization settings."""

    path = "/provider"
    guards = [require_page_roles(Role.PROVIDER)]

    async def _show(
        self,
        request: AnyRequest,
        template: str,
        *,
        status: int = 200,
        error: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        failed: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        async def read(session: AsyncSession) -> Any:
            monetization = provide_monetization(session, request.app.state)
            return {
                "plans": await monetization.plans(),
                "coupons": await monetization.coupons(),
                "config": await monetization.config(),
            }

        data = await run_command(request, read)
        shown = data.body if data.ok else {"plans": [], "coupons": [], "config": None}
        return render(request, template, status=status, headers=headers, error=error,
                      errors=errors or {}, values=values or {}, failed=failed,
                      **shown)  # fmt: skip

    def _again(self, request: AnyRequest, template: str) -> Any:
        return lambda **kw: self._show(request, template, **kw)

    # --- plans and prices ---------------------------------------------------------------
    @get("/plans")
    async def plans(self, request: AnyRequest) -> Template:
        """Plans with their prices, and the forms to add and change them."""
        return await self._show(request, "provider/plans.html")

    @post("/plans", status_code=303)
    async def create_plan(self, request: AnyRequest) -> Response[Any]:
        """Create a plan."""
        form = await read_form(request)
        body = fields(form, "code", "name", "description")
        body["features"] = _features(str(form.get("features", "")))
        command = with_monetization(
            request,
            lambda service, who: service.create_plan(
                msgspec.convert(body, PlanIn), actor=who, request=request
            ),
        )
        return await submit(request, form, command, name="plan",
                            done=lambda plan: f"Plan {plan['name']} created.",
                            to="/provider/plans",
                            rerender=self._again(request, "provider/plans.html"))  # fmt: skip

    @post("/plans/{plan_id:str}", status_code=303)
    async def update_plan(self, request: AnyRequest, plan_id: FromPath[str]) -> Response[Any]:
        """Change a plan's name, description, features and whether it is offered."""
        form = await read_form(request)
        body = fields(form, "name", "description")
        body["description"] = str(form.get("description", "")).strip()
        body["features"] = _features(str(form.get("features", "")))
        body["active"] = form.get("active") == "on"

        async def change(service: Any, who: Any) -> Any:
            data = msgspec.convert(body, PlanPatch)
            return await service.update_plan(_plan_id(plan_id), data, actor=who, request=request)

        return await submit(request, form, with_monetization(request, change),
                            name=f"plan-{plan_id}",
                            done=lambda plan: f"Plan {plan['name']} saved.",
                            to="/provider/plans",
                            rerender=self._again(request, "provider/plans.html"))  # fmt: skip

    @post("/plans/{plan_id:str}/delete", status_code=303)
    async def delete_plan(self, request: AnyRequest, plan_id: FromPath[str]) -> Response[Any]:
        """Delete a plan no organization uses (the service refuses otherwise)."""
        form = await read_form(request)

        async def remove(service: Any, who: Any) -> None:
            await service.delete_plan(_plan_id(plan_id), actor=who, request=request)

        return await submit(request, form, with_monetization(request, remove),
                            name=f"plan-{plan_id}", done="Plan deleted.", to="/provider/plans",
                            rerender=self._again(request, "provider/plans.html"))  # fmt: skip

    @post("/prices", status_code=303)
    async def create_price(self, request: AnyRequest) -> Response[Any]:
        """Add a recurring price to a plan."""
        form = await read_form(request)
        raw_plan_id = str(form.get("plan_id", "")).strip()
        body = fields(form, "amount_cents", "interval", "currency", numbers=("amount_cents",))

        async def add(service: Any, who: Any) -> Any:
            data = msgspec.convert(body, PriceIn)
            return await service.create_price(
                _plan_id(raw_plan_id), data, actor=who, request=request
            )

        return await submit(request, form, with_monetization(request, add), name="price",
                            done="Price added.", to="/provider/plans",
                            rerender=self._again(request, "provider/plans.html"))  # fmt: skip

    @post("/prices/{price_id:str}", status_code=303)
    async def update_price(self, request: AnyRequest, price_id: FromPath[str]) -> Response[Any]:
        """Change a price's amount, interval or currency, or archive it (untick "offered")."""
        form = await read_form(request)
        body = fields(form, "amount_cents", "interval", "currency", numbers=("amount_cents",))
        body["active"] = form.get("active") == "on"

        async def change(service: Any, who: Any) -> Any:
            data = msgspec.convert(body, PricePatch)
            return await service.update_price(_price_id(price_id), data, actor=who,
                                              request=request)  # fmt: skip

        return await submit(request, form, with_monetization(request, change),
                            name=f"price-{price_id}", done="Price saved.", to="/provider/plans",
                            rerender=self._again(request, "provider/plans.html"))  # fmt: skip

    @post("/prices/{price_id:str}/stripe", status_code=303)
    async def link_price(self, request: AnyRequest, price_id: FromPath[str]) -> Response[Any]:
        """Link a price to its Stripe price id (blank unlinks it); Checkout needs the link."""
        form = await read_form(request)
        stripe_price_id = str(form.get("stripe_price_id", "")).strip() or None

        async def link(service: Any, who: Any) -> Any:
            data = msgspec.convert({"stripe_price_id": stripe_price_id}, PricePatch)
            return await service.update_price(_price_id(price_id), data, actor=who,
                                              request=request)  # fmt: skip

        def done(price: Any) -> str:
            if price["stripe_price_id"]:
                return f"Price linked to Stripe price {price['stripe_price_id']}."
            return "Price unlinked from Stripe: Checkout no longer offers it."

        return await submit(request, form, with_monetization(request, link),
                            name=f"stripe-{price_id}", done=done, to="/provider/plans",
                            rerender=self._again(request, "provider/plans.html"))  # fmt: skip

    # --- coupons --------------------------------------------------------------------------
    @get("/coupons")
    async def coupons(self, request: AnyRequest) -> Template:
        """Coupons, and the form to create one."""
        return await self._show(request, "provider/coupons.html")

    @post("/coupons", status_code=303)
    async def create_coupon(self, request: AnyRequest) -> Response[Any]:
        """Create a coupon (percent or amount off, optional limit and expiry)."""
        form = await read_form(request)
        body = fields(form, "code", "percent_off", "amount_off_cents", "currency", "duration",
                      "max_redemptions", "expires_at",
                      numbers=("percent_off", "amount_off_cents", "max_redemptions"))  # fmt: skip
        if "expires_at" in body:  # a date field: the coupon expires at the end of that day, UTC
            body["expires_at"] = f"{body['expires_at']}T23:59:59+00:00"
        command = with_monetization(
            request,
            lambda service, who: service.create_coupon(
                msgspec.convert(body, CouponIn), actor=who, request=request
            ),
        )
        return await submit(request, form, command, name="coupon",
                            done=lambda c: f"Coupon {c['code']} created.", to="/provider/coupons",
                            rerender=self._again(request, "provider/coupons.html"))  # fmt: skip

    @post("/coupons/{code:str}/delete", status_code=303)
    async def delete_coupon(self, request: AnyRequest, code: FromPath[str]) -> Response[Any]:
        """Delete a coupon."""
        form = await read_form(request)

        async def remove(service: Any, who: Any) -> None:
            await service.delete_coupon(code, actor=who, request=request)

        return await submit(request, form, with_monetization(request, remove),
                            name=f"coupon-{code}", done=f"Coupon {code} deleted.",
                            to="/provider/coupons",
                            rerender=self._again(request, "provider/coupons.html"))  # fmt: skip

    # --- global settings ------------------------------------------------------------------
    @get("/settings")
    async def settings(self, request: AnyRequest) -> Template:
        """Default plan, trial days, currency and audit-log retention."""
        return await self._show(request, "provider/settings.html")

    @post("/settings", status_code=303)
    async def save_settings(self, request: AnyRequest) -> Response[Any]:
        """Save the global settings."""
        form = await read_form(request)
        body = fields(form, "default_plan_code", "trial_days", "currency",
                      "audit_retention_days",
                      numbers=("trial_days", "audit_retention_days"))  # fmt: skip
        command = with_monetization(
            request,
            lambda service, who: service.update_config(
                msgspec.convert(body, ConfigUpdate), actor=who, request=request
            ),
        )
        return await submit(request, form, command, name="settings", done="Settings saved.",
                            to="/provider/settings",
                            rerender=self._again(request, "provider/settings.html"))  # fmt: skip
