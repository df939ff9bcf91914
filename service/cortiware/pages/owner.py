"""`/owner`: the owner's organization and subscription; subscribing through Stripe Checkout
and managing billing through the Billing Portal (or a plain message when Stripe is not
configured, as in development)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, post
from litestar import get as get_route
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.principal import Principal, Role, principal_of
from cortiware.auth.routes import settings_of
from cortiware.billing.client import provide_stripe
from cortiware.billing.routes import billing_service
from cortiware.billing.service import CheckoutRequest, SessionUrl, payment_methods_for
from cortiware.errors import NotFound
from cortiware.monetization.routes import provide_monetization
from cortiware.organizations.routes import provide_organizations
from cortiware.pages._commands import Outcome, run_command
from cortiware.pages._forms import read_form
from cortiware.pages._render import render
from cortiware.pages.guards import require_page_roles
from cortiware.portals.owner import organization_of

__all__ = ["OwnerPages"]

AnyRequest = Request[Any, Any, Any]
T = TypeVar("T")
_NO_STRIPE = "Payments are not set up in this environment (no Stripe keys are configured)."


def _owner(request: AnyRequest) -> Principal:
    principal = principal_of(request)
    assert principal is not None  # the guard let only owners in
    return principal


class OwnerPages(Controller):
    """The owner's portal page."""

    path = "/owner"
    guards = [require_page_roles(Role.OWNER)]

    async def _page(
        self,
        request: AnyRequest,
        *,
        status: int = 200,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Template:
        principal = _owner(request)
        checkout = request.query_params.get("checkout")

        async def read(session: AsyncSession) -> dict[str, Any]:
            organizations = provide_organizations(session, request.app.state)
            organization_id = organization_of(principal)
            return {
                "organization": msgspec.to_builtins(
                    await _or_none(organizations.cached_detail(organization_id))
                ),
                "subscription": msgspec.to_builtins(
                    await _or_none(organizations.subscription(organization_id))
                ),
                "plans": msgspec.to_builtins(
                    await provide_monetization(session, request.app.state).public_plans()
                ),
            }

        data = await run_command(request, read)
        shown = data.body if data.ok else {"organization": None, "subscription": None}
        configured = settings_of(request).stripe_payment_methods
        currencies = {p["currency"] for plan in shown.get("plans") or [] for p in plan["prices"]}
        return render(request, "owner.html", status=status, error=error, headers=headers,
                      billing_ready=billing_configured(request),
                      methods={c: payment_methods_for(configured, c) for c in currencies},
                      checkout=checkout if checkout in ("success", "cancelled") else None,
                      **shown)  # fmt: skip

    @get_route("/")
    async def dashboard(self, request: AnyRequest) -> Template:
        """Organization and subscription."""
        return await self._page(request)

    @post("/billing/portal", status_code=303)
    async def billing_portal(self, request: AnyRequest) -> Response[Any]:
        """Open the Stripe Billing Portal (303 to it), or show why it cannot open."""
        form = await read_form(request)
        principal = _owner(request)
        client_key = str(form.get("_form_key", "")).strip() or None
        if not billing_configured(request):
            return await self._page(request, status=503, error=_NO_STRIPE)
        stripe_client = await provide_stripe(request.app.state)

        async def portal(session: AsyncSession) -> SessionUrl:
            billing = billing_service(session, stripe_client, request.app.state)
            return await billing.portal(principal, client_key=client_key)

        return await self._to_stripe(request, await run_command(request, portal, form=form))

    @post("/billing/checkout", status_code=303)
    async def billing_checkout(self, request: AnyRequest) -> Response[Any]:
        """Start a subscription in Stripe Checkout (303 to it), or show why it cannot start."""
        form = await read_form(request)
        principal = _owner(request)
        client_key = str(form.get("_form_key", "")).strip() or None
        price_id = str(form.get("price_id", "")).strip()
        if not billing_configured(request):
            return await self._page(request, status=503, error=_NO_STRIPE)
        stripe_client = await provide_stripe(request.app.state)

        async def checkout(session: AsyncSession) -> SessionUrl:
            billing = billing_service(session, stripe_client, request.app.state)
            data = msgspec.convert({"price_id": price_id}, CheckoutRequest)
            return await billing.checkout(principal, data, client_key=client_key)

        return await self._to_stripe(request, await run_command(request, checkout, form=form))

    async def _to_stripe(self, request: AnyRequest, result: Outcome) -> Response[Any]:
        url = result.body.get("url") if result.ok and isinstance(result.body, dict) else None
        if isinstance(url, str) and url.startswith("https://"):
            return Redirect(url, status_code=303)
        return await self._page(request, status=result.status if not result.ok else 502,
                                error=result.detail or "Stripe returned no page address.",
                                headers=result.headers)  # fmt: skip


def billing_configured(request: AnyRequest) -> bool:
    """False when Stripe's keys are development placeholders (nothing could be paid)."""
    return "STRIPE_SECRET_KEY" not in settings_of(request).uses_dev_defaults


async def _or_none(read: Awaitable[T]) -> T | None:
    try:
        return await read
    except NotFound:
        return None
