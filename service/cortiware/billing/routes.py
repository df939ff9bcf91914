"""Owner billing routes: Billing Portal and Checkout sessions (owner role only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import stripe
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS, StateKey
from cortiware.auth import Principal, Role, require_roles
from cortiware.billing.client import provide_stripe
from cortiware.billing.examples import CHECKOUT_BODY, CHECKOUT_SESSION, PORTAL_SESSION
from cortiware.billing.service import BillingService, CheckoutRequest, SessionUrl
from cortiware.billing.setup import portal_configuration_id
from cortiware.route_policy import declare

__all__ = ["BillingController", "CheckoutRequest", "SessionUrl", "billing_service"]


@dataclass(frozen=True, slots=True)
class PortalConfiguration:
    """The Billing Portal configuration looked up for this app (`id` None: Stripe's default)."""

    id: str | None


PORTAL_CONFIGURATION: Final = StateKey("stripe_portal_configuration", PortalConfiguration)
"""`app.state` entry of the `PortalConfiguration`, looked up on first use."""


def billing_service(
    session: AsyncSession, client: stripe.StripeClient, state: State
) -> BillingService:
    """The billing service on `session`, for the app whose state is `state`."""

    async def portal_configuration() -> str | None:
        # Looked up once per process; without one, Stripe uses the account's default.
        found = PORTAL_CONFIGURATION.find(state)
        if found is None:
            found = PortalConfiguration(await portal_configuration_id(client))
            PORTAL_CONFIGURATION.set(state, found)
        return found.id

    return BillingService(
        session=session,
        stripe=client,
        base_url=SETTINGS.get(state).base_url,
        portal_configuration=portal_configuration,
        payment_methods=SETTINGS.get(state).stripe_payment_methods,
    )


def provide_billing(
    db_session: NamedDependency[AsyncSession],
    stripe_client: NamedDependency[stripe.StripeClient],
    state: State,
) -> BillingService:
    """DI provider: the billing service on the request's transaction."""
    return billing_service(db_session, stripe_client, state)


class BillingController(Controller):
    """`/api/owner/billing/*`: Stripe-hosted pages for the organization's owner."""

    path = "/api/owner/billing"
    guards = [require_roles(Role.OWNER)]
    dependencies = {
        "stripe_client": Provide(provide_stripe),
        "billing": Provide(provide_billing, sync_to_thread=False),
    }
    tags = ["billing"]

    @post(
        "/portal",
        status_code=200,
        summary="Open the Stripe Billing Portal",
        responses={200: PORTAL_SESSION},
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
        billing: NamedDependency[BillingService],
        request: Request[object, object, State],
    ) -> SessionUrl:
        """A Billing Portal session for the owner's organization (customer made on first use).

        Raises:
            UpstreamError: Stripe failed (502).
        """
        return await billing.portal(principal, client_key=request.headers.get("idempotency-key"))

    @post(
        "/checkout",
        status_code=200,
        summary="Start a subscription in Stripe Checkout",
        responses={200: CHECKOUT_SESSION},
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
        data: CHECKOUT_BODY,
        principal: NamedDependency[Principal],
        billing: NamedDependency[BillingService],
        request: Request[object, object, State],
    ) -> SessionUrl:
        """A subscription Checkout session for one of our active prices.

        Raises:
            Unprocessable: the price is unknown, inactive or not in Stripe (422).
            UpstreamError: Stripe failed (502).
        """
        return await billing.checkout(
            principal, data, client_key=request.headers.get("idempotency-key")
        )
