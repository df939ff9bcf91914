"""OpenAPI examples of the monetization routes' bodies (shown in the API reference)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body

from cortiware.monetization.schemas import (
    ConfigOut,
    ConfigUpdate,
    CouponIn,
    CouponOut,
    PlanIn,
    PlanOut,
    PlanPatch,
    PriceIn,
    PriceOut,
    PricePatch,
)

__all__ = [
    "CONFIG",
    "CONFIG_BODY",
    "COUPON",
    "COUPONS",
    "COUPON_BODY",
    "PLAN",
    "PLANS",
    "PLAN_BODY",
    "PLAN_PATCH_BODY",
    "PRICE",
    "PRICE_BODY",
    "PRICE_PATCH_BODY",
]

_PLAN_ID: Final = "3c9a1f0e-2b7d-4e6a-9c85-4f1d2e3a5b70"
_PRICE: Final[dict[str, Any]] = {
    "id": "8e2d4c6a-1b3f-4a5e-9d70-6c8b2a4e1f93",
    "plan_id": _PLAN_ID,
    "amount_cents": 4900,
    "currency": "usd",
    "interval": "month",
    "active": True,
    "stripe_price_id": "price_1Q0abcStandardMonthly",
}
_PLAN: Final[dict[str, Any]] = {
    "id": _PLAN_ID,
    "code": "standard",
    "name": "Standard",
    "description": "For small teams.",
    "active": True,
    "features": ["Up to 10 users", "Email support"],
    "prices": [_PRICE],
}
_CONFIG: Final = {
    "default_plan_code": "standard",
    "trial_days": 14,
    "currency": "usd",
    "audit_retention_days": 90,
    "updated_at": "2026-12-07T09:00:00Z",
}
_COUPON: Final = {
    "id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "code": "LAUNCH20",
    "percent_off": 20,
    "amount_off_cents": None,
    "currency": None,
    "duration": "once",
    "max_redemptions": 100,
    "expires_at": "2027-01-31T23:59:59Z",
    "active": True,
    "created_at": "2026-12-07T09:00:00Z",
}


def _one(summary: str, value: Any) -> list[Example]:
    return [Example(summary=summary, value=value)]


CONFIG: Final = ResponseSpec(
    data_container=ConfigOut,
    generate_examples=False,
    description="The global config.",
    examples=_one("The config", _CONFIG),
)
CONFIG_BODY = Annotated[
    ConfigUpdate,
    Body(examples=_one("A 30-day trial, in euros", {"trial_days": 30, "currency": "eur"})),
]
PLANS: Final = ResponseSpec(
    data_container=list[PlanOut],
    generate_examples=False,
    description="Plans with their prices.",
    examples=_one("One plan", [_PLAN]),
)
PLAN: Final = ResponseSpec(
    data_container=PlanOut,
    generate_examples=False,
    description="The plan.",
    examples=_one("A plan", _PLAN),
)
PLAN_BODY = Annotated[
    PlanIn,
    Body(
        examples=_one(
            "A plan with features",
            {k: _PLAN[k] for k in ("code", "name", "description", "features")},
        )
    ),
]
PLAN_PATCH_BODY = Annotated[
    PlanPatch,
    Body(
        examples=[
            Example(summary="Rename", value={"name": "Standard (2027)"}),
            Example(summary="Archive (no longer offered)", value={"active": False}),
        ]
    ),
]
PRICE: Final = ResponseSpec(
    data_container=PriceOut,
    generate_examples=False,
    description="The price.",
    examples=_one("A price", _PRICE),
)
PRICE_BODY = Annotated[
    PriceIn,
    Body(examples=_one("$49.00 a month", {"amount_cents": 4900, "interval": "month"})),
]
PRICE_PATCH_BODY = Annotated[
    PricePatch,
    Body(
        examples=[
            Example(
                summary="Link to the Stripe price",
                value={"stripe_price_id": "price_1Q0abcStandardMonthly"},
            ),
            Example(summary="Archive (no longer offered)", value={"active": False}),
            Example(summary="Change the amount (unlinked price)", value={"amount_cents": 5900}),
        ]
    ),
]
COUPONS: Final = ResponseSpec(
    data_container=list[CouponOut],
    generate_examples=False,
    description="Coupons by code.",
    examples=_one("One coupon", [_COUPON]),
)
COUPON: Final = ResponseSpec(
    data_container=CouponOut,
    generate_examples=False,
    description="The coupon.",
    examples=_one("A coupon", _COUPON),
)
COUPON_BODY = Annotated[
    CouponIn,
    Body(
        examples=[
            Example(
                summary="20% off once, 100 redemptions, until January",
                value={
                    "code": "LAUNCH20",
                    "percent_off": 20,
                    "max_redemptions": 100,
                    "expires_at": "2027-01-31T23:59:59Z",
                },
            ),
            Example(
                summary="€5 off every invoice",
                value={
                    "code": "FIVE",
                    "amount_off_cents": 500,
                    "currency": "eur",
                    "duration": "forever",
                },
            ),
        ]
    ),
]
