"""Request and response bodies of the monetization API (unknown fields are refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import iso4217
import msgspec

from cortiware.audit.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS
from cortiware.db.models import Coupon, Plan, Price

__all__ = [
    "ConfigOut",
    "ConfigUpdate",
    "CouponIn",
    "CouponOut",
    "PlanIn",
    "PlanOut",
    "PlanPatch",
    "PriceIn",
    "PriceOut",
    "PricePatch",
    "StripePriceId",
]

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
CouponCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
CURRENCY_CODES: Final = tuple(sorted({currency.code.lower() for currency in iso4217.Currency}))
"""ISO 4217 codes, lower case as Stripe writes them."""
if TYPE_CHECKING:
    Currency = str
else:  # a Literal of every code: validated by msgspec and published as an enum
    Currency = Literal[CURRENCY_CODES]
_FEATURE_MAX: Final = 200
# Litestar's schema generation drops constraints on list items; `extra` restores them.
_FEATURE_ITEM: Final[dict[str, Any]] = {
    "extra": {"items": {"type": "string", "maxLength": _FEATURE_MAX}}
}
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Features = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=_FEATURE_MAX)]],
    msgspec.Meta(max_length=50, extra_json_schema=_FEATURE_ITEM),
]
Interval = Literal["month", "year"]
StripePriceId = Annotated[
    str, msgspec.Meta(pattern=r"^price_[A-Za-z0-9_]+$", max_length=255, examples=["price_1Q0abc"])
]
"""A Stripe price id, as the Stripe dashboard shows it (`price_…`)."""
Amount = Annotated[
    int, msgspec.Meta(ge=0, le=100_000_000, extra_json_schema={"extra": {"minimum": 0}})
]


class ConfigOut(msgspec.Struct):
    """The global monetization config; `audit_retention_days` is the effective value."""

    default_plan_code: str | None
    trial_days: int
    currency: str
    audit_retention_days: int
    updated_at: datetime | None


class ConfigUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT` body; an omitted field keeps its value."""

    default_plan_code: Code | msgspec.UnsetType | None = msgspec.UNSET
    # `extra`: Litestar's schema generation drops a bound of 0 (it tests the value's truth).
    trial_days: (
        Annotated[int, msgspec.Meta(ge=0, le=365, extra_json_schema={"extra": {"minimum": 0}})]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    currency: Currency | msgspec.UnsetType = msgspec.UNSET
    audit_retention_days: (
        Annotated[int, msgspec.Meta(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS)]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class PriceOut(msgspec.Struct):
    """A recurring price."""

    id: uuid.UUID
    plan_id: uuid.UUID
    amount_cents: int
    currency: str
    interval: str
    active: bool
    stripe_price_id: str | None

    @classmethod
    def of(cls, price: Price) -> PriceOut:
        """Build from a row."""
        return cls(
            id=price.id,
            plan_id=price.plan_id,
            amount_cents=price.amount_cents,
            currency=price.currency,
            interval=price.interval,
            active=price.active,
            stripe_price_id=price.stripe_price_id,
        )


class PlanOut(msgspec.Struct):
    """A plan with its prices."""

    id: uuid.UUID
    code: str
    name: str
    description: str
    active: bool
    features: list[str]
    prices: list[PriceOut]

    @classmethod
    def of(cls, plan: Plan, prices: list[Price]) -> PlanOut:
        """Build from a row and its prices."""
        return cls(
            id=plan.id,
            code=plan.code,
            name=plan.name,
            description=plan.description,
            active=plan.active,
            features=list(plan.features),
            prices=[PriceOut.of(p) for p in prices],
        )


class PlanIn(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/provider/plans`."""

    code: Code
    name: Name
    description: Description = ""
    features: Features = msgspec.field(default_factory=list)
    active: bool = True


class PlanPatch(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH /api/provider/plans/{id}`; omitted fields keep their value."""

    code: Code | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    features: Features | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/provider/plans/{id}/prices`; currency defaults to the global config's."""

    amount_cents: Amount
    interval: Interval = "month"
    currency: Currency | None = None
    active: bool = True


class PricePatch(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH /api/provider/plans/{plan_id}/prices/{price_id}`; omitted fields keep their value.

    `active: false` archives the price (no longer offered; subscriptions keep it).
    `stripe_price_id` links the price to its Stripe price (`null` unlinks it); Checkout offers
    only linked prices. Amount, currency and interval cannot change while the price stays
    linked to the same Stripe price (Stripe prices are immutable).
    """

    amount_cents: Amount | msgspec.UnsetType = msgspec.UNSET
    interval: Interval | msgspec.UnsetType = msgspec.UNSET
    currency: Currency | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    stripe_price_id: StripePriceId | msgspec.UnsetType | None = msgspec.UNSET


class CouponIn(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/provider/coupons`: exactly one of `percent_off` and `amount_off_cents`."""

    code: CouponCode
    percent_off: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    amount_off_cents: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] | None = None
    currency: Currency | None = None
    duration: Literal["once", "forever"] = "once"
    max_redemptions: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] | None = None
    expires_at: datetime | None = None


class CouponOut(msgspec.Struct):
    """A coupon."""

    id: uuid.UUID
    code: str
    percent_off: int | None
    amount_off_cents: int | None
    currency: str | None
    duration: str
    max_redemptions: int | None
    expires_at: datetime | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, coupon: Coupon) -> CouponOut:
        """Build from a row."""
        return cls(
            id=coupon.id,
            code=coupon.code,
            percent_off=coupon.percent_off,
            amount_off_cents=coupon.amount_off_cents,
            currency=coupon.currency,
            duration=coupon.duration,
            max_redemptions=coupon.max_redemptions,
            expires_at=coupon.expires_at,
            active=coupon.active,
            created_at=coupon.created_at,
        )
