"""OpenAPI examples of the owner billing routes' bodies (shown in the API reference)."""

from __future__ import annotations

from typing import Annotated, Final

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body

from cortiware.billing.service import CheckoutRequest, SessionUrl

__all__ = ["CHECKOUT_BODY", "CHECKOUT_SESSION", "PORTAL_SESSION"]

CHECKOUT_BODY = Annotated[
    CheckoutRequest,
    Body(
        examples=[
            Example(
                summary="One of our prices, by its id",
                value={"price_id": "8e2d4c6a-1b3f-4a5e-9d70-6c8b2a4e1f93"},
            ),
            Example(
                summary="The same price, by its Stripe price id",
                value={"price_id": "price_1Q0abcStandardMonthly"},
            ),
        ]
    ),
]
CHECKOUT_SESSION: Final = ResponseSpec(
    data_container=SessionUrl,
    generate_examples=False,
    description="Stripe Checkout's page: redirect the owner there.",
    examples=[
        Example(
            summary="A Checkout session",
            value={"url": "https://checkout.stripe.com/c/pay/cs_test_a1B2c3D4"},
        )
    ],
)
PORTAL_SESSION: Final = ResponseSpec(
    data_container=SessionUrl,
    generate_examples=False,
    description="The Stripe Billing Portal's page: redirect the owner there.",
    examples=[
        Example(
            summary="A Billing Portal session",
            value={"url": "https://billing.stripe.com/p/session/test_YWNjdF8x"},
        )
    ],
)
