"""Monetization API: the public plan list, and config, plans, prices, coupons for providers."""

from __future__ import annotations

import uuid
from typing import Any, Final

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.auth import Principal, Role, require_roles
from cortiware.cache.read_through import cache_of
from cortiware.db.session import DB_SESSIONMAKER
from cortiware.monetization.examples import (
    CONFIG,
    CONFIG_BODY,
    COUPON,
    COUPON_BODY,
    COUPONS,
    PLAN,
    PLAN_BODY,
    PLAN_PATCH_BODY,
    PLANS,
    PRICE,
    PRICE_BODY,
    PRICE_PATCH_BODY,
)
from cortiware.monetization.schemas import (
    ConfigOut,
    CouponOut,
    PlanOut,
    PriceOut,
)
from cortiware.monetization.service import MonetizationService, public_plans_json
from cortiware.route_policy import declare

__all__ = [
    "CouponController",
    "MonetizationConfigController",
    "PlanController",
    "provide_monetization",
    "public_plans",
    "route_handlers",
]

AnyRequest = Request[Any, Any, Any]


def provide_monetization(
    db_session: NamedDependency[AsyncSession], state: State
) -> MonetizationService:
    """DI provider: the monetization service on the request's transaction."""
    return MonetizationService(
        session=db_session,
        default_retention_days=SETTINGS.get(state).audit_retention_days,
        cache=cache_of(state),
    )


_DEPENDENCIES: Final = {"monetization": Provide(provide_monetization, sync_to_thread=False)}


@get(
    "/api/plans",
    tags=["monetization"],
    summary="Active plans with their active prices",
    responses={200: PLANS},
)
async def public_plans(request: AnyRequest) -> JSONBytes:
    """The public price list, served from the cache (invalidated on every catalog write)."""
    # `request` rather than `state`: Litestar hands the request over as it is, where a
    # `State` parameter goes through its signature model's conversion (2.5 µs of a 25 µs
    # request in process, on the hottest public route).
    state = request.app.state
    body = await public_plans_json(DB_SESSIONMAKER.get(state), cache_of(state))
    # The cached JSON bytes go out as they are, as an ASGI response (`JSONBytes`). The 200
    # body's schema is `responses=`'s.
    return JSONBytes(body)


class JSONBytes:
    """An ASGI response: 200, JSON bytes encoded already (the cached catalog).

    Litestar's `Response` is converted into an `ASGIResponse` on every request (8 µs of a
    60 µs `GET /api/plans` in process, `benchmarks.inprocess`), and `ASGIResponse` itself
    sets its two headers through `MutableScopeHeaders.setdefault`, which scans the header
    list per call (4.3 µs against 0.6 for this class, `timeit`). The service's request
    context adds the common headers (`X-Request-ID`, `nosniff`, `no-store`) around it, and
    a HEAD request gets the same head without the body (`serve_every_method`).
    """

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class MonetizationConfigController(Controller):
    """`/api/provider/monetization/config`: default plan, trial days, currency, retention."""

    path = "/api/provider/monetization/config"
    tags = ["monetization"]
    guards = [require_roles(Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @get("/", summary="The global monetization config", responses={200: CONFIG})
    async def get_config(self, monetization: NamedDependency[MonetizationService]) -> ConfigOut:
        """The config (cached)."""
        return await monetization.config()

    @put(
        "/",
        summary="Change the global monetization config",
        responses={200: CONFIG},
        opt=declare(errors={422: "`default_plan_code` names no active plan."}),
    )
    async def put_config(
        self,
        data: CONFIG_BODY,
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> ConfigOut:
        """Update the given fields; 422 when `default_plan_code` names no active plan."""
        return await monetization.update_config(data, actor=principal, request=request)


class PlanController(Controller):
    """`/api/provider/plans`: the catalog, including inactive plans and prices."""

    path = "/api/provider/plans"
    tags = ["monetization"]
    guards = [require_roles(Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @get("/", summary="Every plan with every price", responses={200: PLANS})
    async def list_plans(self, monetization: NamedDependency[MonetizationService]) -> list[PlanOut]:
        """All plans, active or not."""
        return await monetization.plans()

    @post(
        "/",
        summary="Create a plan",
        responses={201: PLAN},
        opt=declare(errors={409: "A plan with this code already exists."}),
    )
    async def create_plan(
        self,
        data: PLAN_BODY,
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PlanOut:
        """201 with the plan; 409 when the code is taken."""
        return await monetization.create_plan(data, actor=principal, request=request)

    @patch(
        "/{plan_id:uuid}",
        summary="Change a plan",
        responses={200: PLAN},
        opt=declare(
            errors={
                404: "No such plan.",
                409: "The code is taken, or the default plan's code or `active`, or the code "
                "of a plan subscriptions use, would change.",
            }
        ),
    )
    async def update_plan(
        self,
        *,
        plan_id: FromPath[uuid.UUID],
        data: PLAN_PATCH_BODY,
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PlanOut:
        """Update the given fields; 404 unknown, 409 when the new code is taken, or when the
        code or `active` of the default plan, or the code of a plan in use, would change."""
        return await monetization.update_plan(plan_id, data, actor=principal, request=request)

    @delete(
        "/{plan_id:uuid}",
        summary="Delete an unused plan",
        opt=declare(
            errors={404: "No such plan.", 409: "The plan is the default plan, or is still in use."}
        ),
    )
    async def delete_plan(
        self,
        plan_id: FromPath[uuid.UUID],
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> None:
        """204; 409 while it is the default plan or a subscription uses it (archive it)."""
        await monetization.delete_plan(plan_id, actor=principal, request=request)

    @post(
        "/{plan_id:uuid}/prices",
        summary="Add a price to a plan",
        responses={201: PRICE},
        opt=declare(errors={404: "No such plan."}),
    )
    async def create_price(
        self,
        *,
        plan_id: FromPath[uuid.UUID],
        data: PRICE_BODY,
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PriceOut:
        """201 with the price; the currency defaults to the global config's."""
        return await monetization.create_price(plan_id, data, actor=principal, request=request)

    @patch(
        "/{plan_id:uuid}/prices/{price_id:uuid}",
        summary="Change, archive or link a price to Stripe",
        responses={200: PRICE},
        opt=declare(
            errors={
                404: "No such price in this plan.",
                409: "Amount, currency or interval would change while the price stays linked "
                "to the same Stripe price, or another price is linked to that Stripe price.",
            }
        ),
    )
    async def update_price(
        self,
        *,
        plan_id: FromPath[uuid.UUID],
        price_id: FromPath[uuid.UUID],
        data: PRICE_PATCH_BODY,
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PriceOut:
        """Update the given fields: `active: false` archives the price, `stripe_price_id`
        links it to its Stripe price (`null` unlinks; Checkout offers only linked prices)."""
        return await monetization.update_price(
            price_id, data, actor=principal, plan_id=plan_id, request=request
        )


class CouponController(Controller):
    """`/api/provider/coupons`: discount codes."""

    path = "/api/provider/coupons"
    tags = ["monetization"]
    guards = [require_roles(Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @get("/", summary="Every coupon", responses={200: COUPONS})
    async def list_coupons(
        self, monetization: NamedDependency[MonetizationService]
    ) -> list[CouponOut]:
        """All coupons by code."""
        return await monetization.coupons()

    @post(
        "/",
        summary="Create a coupon",
        responses={201: COUPON},
        opt=declare(
            errors={
                400: "Inconsistent discount, currency or `expires_at`.",
                409: "A coupon with this code already exists.",
            }
        ),
    )
    async def create_coupon(
        self,
        data: COUPON_BODY,
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> CouponOut:
        """201 with the coupon; 400 unless exactly one discount is given; 409 duplicate code."""
        return await monetization.create_coupon(data, actor=principal, request=request)

    @delete("/{code:str}", summary="Delete a coupon", opt=declare(errors={404: "No such coupon."}))
    async def delete_coupon(
        self,
        code: FromPath[str],
        monetization: NamedDependency[MonetizationService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> None:
        """204; 404 when there is no such code."""
        await monetization.delete_coupon(code, actor=principal, request=request)


route_handlers: Final[list[Any]] = [
    public_plans,
    MonetizationConfigController,
    PlanController,
    CouponController,
]
