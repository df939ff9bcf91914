"""Owner billing routes: Billing Portal and Checkout sessions (owner role only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Final

import msgspec
import stripe
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams

from cortiware.auth import Principal, Role, require_roles
from cortiware.billing.client import provide_stripe, stripe_call
from cortiware.billing.customers import ensure_customer
from cortiware.billing.setup import portal_configuration_id
from cortiware.db.models import Price
from cortiware.errors import Forbidden, Unprocessable, UpstreamError
from cortiware.route_policy import declare
from cortiware.settings import Settings

__all__ = ["BillingController", "CheckoutRequest", "SessionUrl"]

_PORTAL_CONFIGURATION: Final = "stripe_portal_configuration"


class CheckoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/owner/billing/checkout` (an unknown field is a 400, as everywhere)."""

    price_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    """A Stripe price id (`price_…`) or the id of one of our active prices."""


class SessionUrl(msgspec.Struct):
    """A Stripe-hosted page to redirect the owner to."""

    url: str


class BillingController(Controller):
    """`/api/owner/billing/*`: Stripe-hosted pages for the organization's owner."""

    path = "/api/owner/billing"
    guards = [require_roles(Role.OWNER)]
    dependencies = {"stripe_client": Provide(provide_stripe)}
    tags = ["billing"]

    @post(
        "/portal",
        status_code=200,
        opt=declare(
            errors={
                404: "No such organization.",
                502: "Stripe failed or could not be reached.",
            }
        ),
    )
    async def portal(
        self,
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        stripe_client: NamedDependency[stripe.StripeClient],
        request: Request[object, object, State],
    ) -> SessionUrl:
        """A Billing Portal session for the owner's organization (customer made on first use).

        Raises:
            UpstreamError: Stripe failed (502).
        """
        settings: Settings = request.app.state.settings
        organization_id = _organization_of(principal)
        customer = await ensure_customer(
            db_session, stripe_client, organization_id, principal.owner_id
        )
        params: PortalSessionParams = {
            "customer": customer,
            "return_url": f"{settings.base_url}/owner",
        }
        if configuration := await _portal_configuration(request.app.state, stripe_client):
            params["configuration"] = configuration
        async with stripe_call("open the billing portal"):
            portal = await stripe_client.v1.billing_portal.sessions.create_async(
                params, {"idempotency_key": _idempotency_key(request, principal, "portal")}
            )
        return SessionUrl(url=portal.url)

    @post(
        "/checkout",
        status_code=200,
        opt=declare(
            errors={
                404: "No such organization.",
                422: "`price_id` is not an active price available in Stripe.",
                502: "Stripe failed or could not be reached.",
            }
        ),
    )
    async def checkout(
        self,
        data: JSONBody[CheckoutRequest],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        stripe_client: NamedDependency[stripe.StripeClient],
        request: Request[object, object, State],
    ) -> SessionUrl:
        """A subscription Checkout session for one of our active prices.

        Raises:
            Unprocessable: the price is unknown, inactive or not in Stripe (422).
            UpstreamError: Stripe failed (502).
        """
        settings: Settings = request.app.state.settings
        organization_id = _organization_of(principal)
        stripe_price = await _stripe_price(db_session, data.price_id)
        customer = await ensure_customer(
            db_session, stripe_client, organization_id, principal.owner_id
        )
        org = str(organization_id)
        async with stripe_call("start checkout"):
            checkout = await stripe_client.v1.checkout.sessions.create_async(
                {
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": org,
                    "line_items": [{"price": stripe_price, "quantity": 1}],
                    "subscription_data": {"metadata": {"organization_id": org}},
                    "metadata": {"organization_id": org},
                    "success_url": f"{settings.base_url}/owner?checkout=success",
                    "cancel_url": f"{settings.base_url}/owner?checkout=cancelled",
                },
                {"idempotency_key": _idempotency_key(request, principal, "checkout")},
            )
        if not checkout.url:
            raise UpstreamError("Stripe returned a Checkout session without a URL.")
        return SessionUrl(url=checkout.url)


async def _portal_configuration(state: State, client: stripe.StripeClient) -> str | None:
    # The configuration `cortiware stripe setup` made (looked up once per process);
    # without one, Stripe uses the account's default configuration.
    if _PORTAL_CONFIGURATION not in state:
        state[_PORTAL_CONFIGURATION] = await portal_configuration_id(client)
    found: str | None = state[_PORTAL_CONFIGURATION]
    return found


def _organization_of(principal: Principal) -> uuid.UUID:
    if principal.organization_id is None:
        raise Forbidden("Your session is not bound to an organization.")
    return principal.organization_id


async def _stripe_price(session: AsyncSession, price_id: str) -> str:
    query = select(Price.stripe_price_id).where(Price.active.is_(True))
    try:
        query = query.where(Price.id == uuid.UUID(price_id))
    except ValueError:
        query = query.where(Price.stripe_price_id == price_id)
    found = await session.scalar(query)
    if not found:
        raise Unprocessable("price_id is not an active price available in Stripe.")
    return found


def _idempotency_key(
    request: Request[object, object, State], principal: Principal, purpose: str
) -> str:
    # A client retry with the same Idempotency-Key reaches Stripe with the same key too;
    # otherwise each call gets a fresh key (it still protects the SDK's own retries).
    client_key = request.headers.get("idempotency-key")
    suffix = client_key if client_key else uuid.uuid4().hex
    return f"cortiware-{purpose}-{principal.id}-{suffix}"[:255]
