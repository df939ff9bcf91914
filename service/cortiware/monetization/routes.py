"""Monetization API: the public plan list, and config, plans, prices, coupons for providers."""

from __future__ import annotations

import uuid
from typing import Any, Final

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit import record, snapshot
from cortiware.auth import Principal, Role, require_roles
from cortiware.cache import TTL_MONETIZATION, TTL_PLANS
from cortiware.cache.read_through import commit_and_invalidate, read_through
from cortiware.db.base import to_utc
from cortiware.db.models import Coupon, MonetizationConfig, Plan, Price, Subscription
from cortiware.errors import BadRequest, Conflict, NotFound, Unprocessable
from cortiware.monetization.catalog import load_config, load_plans
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
)
from cortiware.route_policy import declare

__all__ = [
    "CouponController",
    "MonetizationConfigController",
    "PlanController",
    "public_plans",
    "route_handlers",
]

PLANS_CACHE_KEY: Final = "plans:active"
CONFIG_CACHE_KEY: Final = "monetization:config"
AnyRequest = Request[Any, Any, Any]


@get("/api/plans", tags=["monetization"], summary="Active plans with their active prices")
async def public_plans(db_session: NamedDependency[AsyncSession], state: State) -> list[PlanOut]:
    """The public price list, served from the cache (invalidated on every catalog write)."""
    return await read_through(
        state,
        PLANS_CACHE_KEY,
        TTL_PLANS,
        lambda: load_plans(db_session, active_only=True),
        list[PlanOut],
    )


async def _plan(session: AsyncSession, plan_id: uuid.UUID, *, lock: bool = False) -> Plan:
    plan = await session.get(Plan, plan_id, with_for_update=lock)
    if plan is None:
        raise NotFound("No such plan.")
    return plan


async def _refuse_if_referenced(session: AsyncSession, plan: Plan, *, renamed: bool) -> None:
    """409 when `plan` is the default plan, or (`renamed`: its code would change or vanish)
    when subscriptions name it: both refer to plans by code."""
    config = await session.get(MonetizationConfig, 1)
    if config is not None and config.default_plan_code == plan.code:
        raise Conflict("This is the default plan; choose another default first.")
    if not renamed:
        return
    in_use = await session.scalar(
        select(func.count()).select_from(Subscription).where(Subscription.plan_code == plan.code)
    )
    if in_use:
        raise Conflict(
            f"{in_use} subscription(s) use this plan by its code; keep the code and archive "
            'it with PATCH {"active": false} instead.'
        )


async def _flush_unique(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A {what} with this code already exists.") from exc


class MonetizationConfigController(Controller):
    """`/api/provider/monetization/config`: default plan, trial days, currency, retention."""

    path = "/api/provider/monetization/config"
    tags = ["monetization"]
    guards = [require_roles(Role.PROVIDER)]

    @get("/", summary="The global monetization config")
    async def get_config(
        self, db_session: NamedDependency[AsyncSession], state: State
    ) -> ConfigOut:
        """The config (cached)."""
        default_days: int = state.settings.audit_retention_days
        return await read_through(
            state,
            CONFIG_CACHE_KEY,
            TTL_MONETIZATION,
            lambda: load_config(db_session, default_days),
            ConfigOut,
        )

    @put(
        "/",
        summary="Change the global monetization config",
        opt=declare(errors={422: "`default_plan_code` names no active plan."}),
    )
    async def put_config(
        self,
        data: JSONBody[ConfigUpdate],
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> ConfigOut:
        """Update the given fields; 422 when `default_plan_code` names no active plan."""
        config = await db_session.get(MonetizationConfig, 1, with_for_update=True)
        if config is None:
            config = MonetizationConfig(id=1, trial_days=14, currency="usd")
            db_session.add(config)
            await db_session.flush()
        before = snapshot(config, exclude={"id", "updated_at"})
        if isinstance(data.default_plan_code, str):
            # FOR SHARE: a concurrent delete, rename or archive of that plan waits for us,
            # then sees it is the default.
            exists = await db_session.scalar(
                select(Plan.id)
                .where(Plan.code == data.default_plan_code, Plan.active.is_(True))
                .with_for_update(read=True)
            )
            if exists is None:
                raise Unprocessable("default_plan_code names no active plan.")
        for field in ("default_plan_code", "trial_days", "currency", "audit_retention_days"):
            value = getattr(data, field)
            if value is not msgspec.UNSET:
                setattr(config, field, value)
        await db_session.flush()
        await record(
            db_session,
            actor=principal,
            entity="monetization_config",
            entity_id=1,
            action="update",
            before=before,
            after=snapshot(config, exclude={"id", "updated_at"}),
            request=request,
        )
        out = await load_config(db_session, state.settings.audit_retention_days)
        await commit_and_invalidate(db_session, state, "monetization")
        return out


class PlanController(Controller):
    """`/api/provider/plans`: the catalog, including inactive plans and prices."""

    path = "/api/provider/plans"
    tags = ["monetization"]
    guards = [require_roles(Role.PROVIDER)]

    @get("/", summary="Every plan with every price")
    async def list_plans(self, db_session: NamedDependency[AsyncSession]) -> list[PlanOut]:
        """All plans, active or not."""
        return await load_plans(db_session, active_only=False)

    @post(
        "/",
        summary="Create a plan",
        opt=declare(errors={409: "A plan with this code already exists."}),
    )
    async def create_plan(
        self,
        data: JSONBody[PlanIn],
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PlanOut:
        """201 with the plan; 409 when the code is taken."""
        plan = Plan(
            code=data.code,
            name=data.name,
            description=data.description,
            features=list(data.features),
            active=data.active,
        )
        db_session.add(plan)
        await _flush_unique(db_session, "plan")
        after = snapshot(plan)
        await record(
            db_session,
            actor=principal,
            entity="plan",
            entity_id=plan.id,
            action="create",
            after=after,
            request=request,
        )
        await commit_and_invalidate(db_session, state, "plans")
        return PlanOut.of(plan, [])

    @patch(
        "/{plan_id:uuid}",
        summary="Change a plan",
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
        data: JSONBody[PlanPatch],
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PlanOut:
        """Update the given fields; 404 unknown, 409 when the new code is taken, or when the
        code or `active` of the default plan, or the code of a plan in use, would change."""
        plan = await _plan(db_session, plan_id, lock=True)
        renamed = data.code is not msgspec.UNSET and data.code != plan.code
        if renamed or data.active is False:
            await _refuse_if_referenced(db_session, plan, renamed=renamed)
        before = snapshot(plan)
        for field in ("code", "name", "description", "features", "active"):
            value = getattr(data, field)
            if value is not msgspec.UNSET:
                setattr(plan, field, list(value) if field == "features" else value)
        await _flush_unique(db_session, "plan")
        await record(
            db_session,
            actor=principal,
            entity="plan",
            entity_id=plan.id,
            action="update",
            before=before,
            after=snapshot(plan),
            request=request,
        )
        prices = (await db_session.scalars(select(Price).where(Price.plan_id == plan.id))).all()
        await commit_and_invalidate(db_session, state, "plans")
        return PlanOut.of(plan, list(prices))

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
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> None:
        """204; 409 while it is the default plan or a subscription uses it (archive it)."""
        plan = await _plan(db_session, plan_id, lock=True)
        await _refuse_if_referenced(db_session, plan, renamed=True)
        before = snapshot(plan)
        # A Core DELETE lets the database cascade to prices (the ORM would null plan_id).
        await db_session.execute(sql_delete(Plan).where(Plan.id == plan.id))
        await record(
            db_session,
            actor=principal,
            entity="plan",
            entity_id=plan_id,
            action="delete",
            before=before,
            request=request,
        )
        await commit_and_invalidate(db_session, state, "plans")

    @post(
        "/{plan_id:uuid}/prices",
        summary="Add a price to a plan",
        opt=declare(errors={404: "No such plan."}),
    )
    async def create_price(
        self,
        *,
        plan_id: FromPath[uuid.UUID],
        data: JSONBody[PriceIn],
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> PriceOut:
        """201 with the price; the currency defaults to the global config's."""
        # Locked: a concurrent delete of the plan either finishes first (then 404 here) or
        # waits for this price and deletes it with the plan; never a foreign-key error.
        await _plan(db_session, plan_id, lock=True)
        currency = data.currency or await db_session.scalar(
            select(MonetizationConfig.currency).where(MonetizationConfig.id == 1)
        )
        price = Price(
            plan_id=plan_id,
            amount_cents=data.amount_cents,
            currency=currency or "usd",
            interval=data.interval,
            active=data.active,
        )
        db_session.add(price)
        await db_session.flush()
        await record(
            db_session,
            actor=principal,
            entity="price",
            entity_id=price.id,
            action="create",
            after=snapshot(price),
            request=request,
        )
        await commit_and_invalidate(db_session, state, "plans")
        return PriceOut.of(price)


class CouponController(Controller):
    """`/api/provider/coupons`: discount codes."""

    path = "/api/provider/coupons"
    tags = ["monetization"]
    guards = [require_roles(Role.PROVIDER)]

    @get("/", summary="Every coupon")
    async def list_coupons(self, db_session: NamedDependency[AsyncSession]) -> list[CouponOut]:
        """All coupons by code."""
        rows = (await db_session.scalars(select(Coupon).order_by(Coupon.code))).all()
        return [CouponOut.of(c) for c in rows]

    @post(
        "/",
        summary="Create a coupon",
        opt=declare(
            errors={
                400: "Inconsistent discount, currency or `expires_at`.",
                409: "A coupon with this code already exists.",
            }
        ),
    )
    async def create_coupon(
        self,
        data: JSONBody[CouponIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> CouponOut:
        """201 with the coupon; 400 unless exactly one discount is given; 409 duplicate code."""
        if (data.percent_off is None) == (data.amount_off_cents is None):
            raise BadRequest("Give exactly one of percent_off and amount_off_cents.")
        if data.amount_off_cents is not None and data.currency is None:
            raise BadRequest("amount_off_cents needs a currency.")
        expires_at = None
        if data.expires_at is not None:
            try:
                expires_at = to_utc(data.expires_at)
            except ValueError as exc:
                raise BadRequest(f"expires_at {exc}.") from None
        coupon = Coupon(
            code=data.code,
            percent_off=data.percent_off,
            amount_off_cents=data.amount_off_cents,
            currency=data.currency if data.amount_off_cents is not None else None,
            duration=data.duration,
            max_redemptions=data.max_redemptions,
            expires_at=expires_at,
        )
        db_session.add(coupon)
        await _flush_unique(db_session, "coupon")
        await record(
            db_session,
            actor=principal,
            entity="coupon",
            entity_id=coupon.code,
            action="create",
            after=snapshot(coupon),
            request=request,
        )
        return CouponOut.of(coupon)

    @delete("/{code:str}", summary="Delete a coupon", opt=declare(errors={404: "No such coupon."}))
    async def delete_coupon(
        self,
        code: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> None:
        """204; 404 when there is no such code."""
        coupon = await db_session.scalar(
            select(Coupon).where(Coupon.code == code).with_for_update()
        )
        if coupon is None:
            raise NotFound("No such coupon.")
        before = snapshot(coupon)
        await db_session.delete(coupon)
        await record(
            db_session,
            actor=principal,
            entity="coupon",
            entity_id=code,
            action="delete",
            before=before,
            request=request,
        )


route_handlers: Final[list[Any]] = [
    public_plans,
    MonetizationConfigController,
    PlanController,
    CouponController,
]
