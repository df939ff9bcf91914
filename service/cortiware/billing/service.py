"""The billing service: Stripe-hosted pages (Billing Portal, Checkout) for an owner.

The organization's Stripe customer is created on first use (`ensure_customer`) in the
caller's transaction; Stripe errors become `UpstreamError` (`stripe_call`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

import msgspec
import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams

from cortiware.auth import Principal
from cortiware.billing.client import stripe_call
from cortiware.billing.customers import ensure_customer
from cortiware.db.models import Price
from cortiware.errors import Forbidden, Unprocessable, UpstreamError
from cortiware.settings import CHECKOUT_PAYMENT_METHODS

__all__ = ["BillingService", "CheckoutRequest", "SessionUrl", "payment_methods_for"]


def payment_methods_for(configured: tuple[str, ...], currency: str) -> list[str]:
    """The configured Checkout payment method types that take `currency` (card takes all)."""
    return [
        method
        for method in configured
        if (currencies := CHECKOUT_PAYMENT_METHODS.get(method)) is None
        or currency.lower() in currencies
    ]


class CheckoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/owner/billing/checkout` (an unknown field is a 400, as everywhere)."""

    price_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    """A Stripe price id (`price_…`) or the id of one of our active prices."""


class SessionUrl(msgspec.Struct):
    """A Stripe-hosted page to redirect the owner to."""

    url: str


class BillingService:
    """Stripe sessions for the owner's organization, in the caller's transaction."""

    __slots__ = ("base_url", "payment_methods", "portal_configuration", "session", "stripe")

    def __init__(
        self,
        *,
        session: AsyncSession,
        stripe: stripe.StripeClient,
        base_url: str,
        portal_configuration: Callable[[], Awaitable[str | None]],
        payment_methods: tuple[str, ...] = ("card",),
    ) -> None:
        self.session = session
        self.payment_methods = payment_methods
        """`STRIPE_PAYMENT_METHODS`: offered in Checkout where the price's currency allows."""
        self.stripe = stripe
        self.base_url = base_url
        self.portal_configuration = portal_configuration
        """The configuration `cortiware stripe setup` made, or None for Stripe's default."""

    async def portal(self, principal: Principal, *, client_key: str | None = None) -> SessionUrl:
        """A Billing Portal session for the owner's organization.

        `client_key` is the caller's idempotency key: a retry reaches Stripe with the same key.

        Raises:
            Forbidden: the session is bound to no organization (403).
            UpstreamError: Stripe failed (502).
        """
        organization_id = _organization_of(principal)
        customer = await ensure_customer(
            self.session, self.stripe, organization_id, principal.owner_id
        )
        params: PortalSessionParams = {
            "customer": customer,
            "return_url": f"{self.base_url}/owner",
        }
        if configuration := await self.portal_configuration():
            params["configuration"] = configuration
        async with stripe_call("open the billing portal"):
            portal = await self.stripe.v1.billing_portal.sessions.create_async(
                params, {"idempotency_key": _idempotency_key(principal, "portal", client_key)}
            )
        return SessionUrl(url=portal.url)

    async def checkout(
        self, principal: Principal, data: CheckoutRequest, *, client_key: str | None = None
    ) -> SessionUrl:
        """A subscription Checkout session for one of our active prices, offering the
        configured payment methods that take the price's currency.

        Raises:
            Forbidden: the session is bound to no organization (403).
            Unprocessable: the price is unknown, inactive or not in Stripe (422).
            UpstreamError: Stripe failed (502).
        """
        organization_id = _organization_of(principal)
        stripe_price, currency = await self._stripe_price(data.price_id)
        customer = await ensure_customer(
            self.session, self.stripe, organization_id, principal.owner_id
        )
        org = str(organization_id)
        async with stripe_call("start checkout"):
            checkout = await self.stripe.v1.checkout.sessions.create_async(
                {
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": org,
                    "line_items": [{"price": stripe_price, "quantity": 1}],
                    # A filter on what Stripe finds eligible (the pinned API version has no
                    # fixed `payment_method_types`); names checked at start-up, a subset of
                    # the SDK's Literal.
                    "allowed_payment_method_types": cast(
                        Any, payment_methods_for(self.payment_methods, currency)
                    ),
                    "subscription_data": {"metadata": {"organization_id": org}},
                    "metadata": {"organization_id": org},
                    "success_url": f"{self.base_url}/owner?checkout=success",
                    "cancel_url": f"{self.base_url}/owner?checkout=cancelled",
                },
                {"idempotency_key": _idempotency_key(principal, "checkout", client_key)},
            )
        if not checkout.url:
            raise UpstreamError("Stripe returned a Checkout session without a URL.")
        return SessionUrl(url=checkout.url)

    async def _stripe_price(self, price_id: str) -> tuple[str, str]:
        query = select(Price.stripe_price_id, Price.currency).where(Price.active.is_(True))
        try:
            query = query.where(Price.id == uuid.UUID(price_id))
        except ValueError:
            query = query.where(Price.stripe_price_id == price_id)
        found = (await self.session.execute(query)).first()
        if found is None or not found.stripe_price_id:
            raise Unprocessable("price_id is not an active price available in Stripe.")
        return found.stripe_price_id, found.currency


def _organization_of(principal: Principal) -> uuid.UUID:
    if principal.organization_id is None:
        raise Forbidden("Your session is not bound to an organization.")
    return principal.organization_id


def _idempotency_key(principal: Principal, purpose: str, client_key: str | None) -> str:
    # A client retry with the same key reaches Stripe with the same key too; otherwise each
    # call gets a fresh key (it still protects the SDK's own retries).
    suffix = client_key if client_key else uuid.uuid4().hex
    return f"cortiware-{purpose}-{principal.id}-{suffix}"[:255]
