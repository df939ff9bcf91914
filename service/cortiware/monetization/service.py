"""The monetization service: the global config, plans, prices and coupons.

It owns its queries, audit rows and cache invalidation (after the caller's transaction
commits); a duplicate code becomes `Conflict` at the flush that hit the unique index.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import msgspec
from litestar.connection import ASGIConnection
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.audit import Actor, record, snapshot
from cortiware.auth import Principal
from cortiware.cache import GROUP_MONETIZATION, GROUP_PLANS, TTL_MONETIZATION, TTL_PLANS, Cache
from cortiware.cache.read_through import invalidate_after_commit, read_through
from cortiware.db.base import to_utc
from cortiware.db.models import Coupon, MonetizationConfig, Plan, Price, Subscription
from cortiware.db.session import transaction
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
    PricePatch,
)

__all__ = [
    "CONFIG_CACHE_KEY",
    "PLANS_CACHE_KEY",
    "PLANS_LOCAL_SECONDS",
    "DuplicateCode",
    "MonetizationService",
    "public_plans_json",
]

PLANS_CACHE_KEY: Final = "plans:active"
CONFIG_CACHE_KEY: Final = "monetization:config"
PLANS_LOCAL_SECONDS: Final = 1.0
"""Seconds each process serves the public plan list from its own memory: a catalog change
made through another instance shows there within this long (through this one, at once)."""

Request = ASGIConnection[Any, Any, Any, Any]
Who = Principal | Actor


async def public_plans_json(
    sessions: async_sessionmaker[AsyncSession], cache: Cache | None
) -> bytes:
    """The public plan list (active plans, active prices) as JSON, ready to send.

    Read on every visit to the price page, so it is served from the process tier of the
    cache (`PLANS_LOCAL_SECONDS`), then Redis, and only on a miss from the database, in a
    transaction of its own: a cached answer opens no database session.
    """

    async def fetch() -> list[PlanOut]:
        async with transaction(sessions) as session:
            return await load_plans(session, active_only=True)

    if cache is None:
        return msgspec.json.encode(await fetch())
    return await cache.encoded(PLANS_CACHE_KEY, TTL_PLANS, fetch, local_for=PLANS_LOCAL_SECONDS)


class DuplicateCode(Conflict):
    """A plan or coupon with this code exists already."""


_FIXED_BY_STRIPE: Final = ("amount_cents", "currency", "interval")
"""What a Stripe price never changes, so neither may a price linked to one."""


@contextmanager
def _unique(what: str) -> Iterator[None]:
    # The repository boundary: the unique index is the only integrity rule these flushes can
    # break. Hand-written rather than advanced-alchemy's `wrap_sqlalchemy_exception`, which
    # would also wrap every other SQLAlchemy error (an outage must stay one).
    try:
        yield
    except IntegrityError as exc:
        raise DuplicateCode(f"A {what} with this code already exists.") from exc


class MonetizationService:
    """Config, catalog and coupons in the caller's transaction (`session`)."""

    __slots__ = ("cache", "default_retention_days", "session")

    def __init__(
        self, *, session: AsyncSession, default_retention_days: int, cache: Cache | None = None
    ) -> None:
        self.session = session
        self.default_retention_days = default_retention_days
        self.cache = cache

    # --- the global config -------------------------------------------------------------

    async def config(self) -> ConfigOut:
        """The global config (cached)."""
        return await read_through(
            self.cache,
            CONFIG_CACHE_KEY,
            TTL_MONETIZATION,
            lambda: load_config(self.session, self.default_retention_days),
            ConfigOut,
        )

    async def update_config(
        self, data: ConfigUpdate, *, actor: Who, request: Request | None = None
    ) -> ConfigOut:
        """Update the given fields.

        Raises:
            Unprocessable: `default_plan_code` names no active plan (422).
        """
        session = self.session
        config = await session.get(MonetizationConfig, 1, with_for_update=True)
        if config is None:
            config = MonetizationConfig(id=1, trial_days=14, currency="usd")
            session.add(config)
            await session.flush()
        before = snapshot(config, exclude={"id", "updated_at"})
        if isinstance(data.default_plan_code, str):
            # FOR SHARE: a concurrent delete, rename or archive of that plan waits for us,
            # then sees it is the default.
            exists = await session.scalar(
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
        await session.flush()
        await record(
            session,
            actor=actor,
            entity="monetization_config",
            entity_id=1,
            action="update",
            before=before,
            after=snapshot(config, exclude={"id", "updated_at"}),
            request=request,
        )
        invalidate_after_commit(session, self.cache, GROUP_MONETIZATION)
        return await load_config(session, self.default_retention_days)

    # --- plans and prices --------------------------------------------------------------

    async def public_plans(self) -> list[PlanOut]:
        """Active plans with their active prices (cached)."""
        return await read_through(
            self.cache,
            PLANS_CACHE_KEY,
            TTL_PLANS,
            lambda: load_plans(self.session, active_only=True),
            list[PlanOut],
        )

    async def plans(self) -> list[PlanOut]:
        """Every plan with every price."""
        return await load_plans(self.session, active_only=False)

    async def create_plan(
        self, data: PlanIn, *, actor: Who, request: Request | None = None
    ) -> PlanOut:
        """The new plan.

        Raises:
            DuplicateCode: the code is taken (409).
        """
        plan = Plan(
            code=data.code,
            name=data.name,
            description=data.description,
            features=list(data.features),
            active=data.active,
        )
        self.session.add(plan)
        with _unique("plan"):
            await self.session.flush()
        await record(
            self.session,
            actor=actor,
            entity="plan",
            entity_id=plan.id,
            action="create",
            after=snapshot(plan),
            request=request,
        )
        invalidate_after_commit(self.session, self.cache, GROUP_PLANS)
        return PlanOut.of(plan, [])

    async def update_plan(
        self, plan_id: uuid.UUID, data: PlanPatch, *, actor: Who, request: Request | None = None
    ) -> PlanOut:
        """Update the given fields.

        Raises:
            NotFound: no such plan (404).
            Conflict: the new code is taken, or the code or `active` of the default plan, or
                the code of a plan in use, would change (409).
        """
        plan = await self._plan(plan_id, lock=True)
        renamed = data.code is not msgspec.UNSET and data.code != plan.code
        if renamed or data.active is False:
            await self._refuse_if_referenced(plan, renamed=renamed)
        before = snapshot(plan)
        for field in ("code", "name", "description", "features", "active"):
            value = getattr(data, field)
            if value is not msgspec.UNSET:
                setattr(plan, field, list(value) if field == "features" else value)
        with _unique("plan"):
            await self.session.flush()
        await record(
            self.session,
            actor=actor,
            entity="plan",
            entity_id=plan.id,
            action="update",
            before=before,
            after=snapshot(plan),
            request=request,
        )
        prices = (await self.session.scalars(select(Price).where(Price.plan_id == plan.id))).all()
        invalidate_after_commit(self.session, self.cache, GROUP_PLANS)
        return PlanOut.of(plan, list(prices))

    async def delete_plan(
        self, plan_id: uuid.UUID, *, actor: Who, request: Request | None = None
    ) -> None:
        """Delete a plan and its prices.

        Raises:
            NotFound: no such plan (404).
            Conflict: it is the default plan or a subscription uses it (409).
        """
        plan = await self._plan(plan_id, lock=True)
        await self._refuse_if_referenced(plan, renamed=True)
        before = snapshot(plan)
        # A Core DELETE lets the database cascade to prices (the ORM would null plan_id).
        await self.session.execute(sql_delete(Plan).where(Plan.id == plan.id))
        await record(
            self.session,
            actor=actor,
            entity="plan",
            entity_id=plan_id,
            action="delete",
            before=before,
            request=request,
        )
        invalidate_after_commit(self.session, self.cache, GROUP_PLANS)

    async def create_price(
        self, plan_id: uuid.UUID, data: PriceIn, *, actor: Who, request: Request | None = None
    ) -> PriceOut:
        """A new price of the plan; the currency defaults to the global config's.

        Raises:
            NotFound: no such plan (404).
        """
        # Locked: a concurrent delete of the plan either finishes first (then 404 here) or
        # waits for this price and deletes it with the plan; never a foreign-key error.
        await self._plan(plan_id, lock=True)
        currency = data.currency or await self.session.scalar(
            select(MonetizationConfig.currency).where(MonetizationConfig.id == 1)
        )
        price = Price(
            plan_id=plan_id,
            amount_cents=data.amount_cents,
            currency=currency or "usd",
            interval=data.interval,
            active=data.active,
        )
        self.session.add(price)
        await self.session.flush()
        await record(
            self.session,
            actor=actor,
            entity="price",
            entity_id=price.id,
            action="create",
            after=snapshot(price),
            request=request,
        )
        invalidate_after_commit(self.session, self.cache, GROUP_PLANS)
        return PriceOut.of(price)

    async def update_price(
        self,
        price_id: uuid.UUID,
        data: PricePatch,
        *,
        actor: Who,
        plan_id: uuid.UUID | None = None,
        request: Request | None = None,
    ) -> PriceOut:
        """Update the given fields: edit, archive (`active`), link to a Stripe price.

        Raises:
            NotFound: no such price (of the plan `plan_id`, when given) (404).
            Conflict: amount, currency or interval would change while the price stays linked
                to the same Stripe price, or another price is linked to that Stripe price (409).
        """
        price = await self.session.get(Price, price_id, with_for_update=True)
        if price is None or (plan_id is not None and price.plan_id != plan_id):
            raise NotFound("No such price.")
        link = price.stripe_price_id
        if data.stripe_price_id is not msgspec.UNSET:
            link = data.stripe_price_id
        changed = [
            name
            for name in _FIXED_BY_STRIPE
            if getattr(data, name) is not msgspec.UNSET
            and getattr(data, name) != getattr(price, name)
        ]
        if changed and link is not None and link == price.stripe_price_id:
            raise Conflict(
                f"This price is linked to Stripe price {link}, whose {', '.join(changed)} cannot "
                "change: link the Stripe price that has the new values, or archive this price "
                "and add a new one."
            )
        before = snapshot(price)
        for name in (*_FIXED_BY_STRIPE, "active", "stripe_price_id"):
            value = getattr(data, name)
            if value is not msgspec.UNSET:
                setattr(price, name, value)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # the unique index on stripe_price_id
            raise Conflict("Another price is linked to this Stripe price already.") from exc
        await record(
            self.session,
            actor=actor,
            entity="price",
            entity_id=price.id,
            action="update",
            before=before,
            after=snapshot(price),
            request=request,
        )
        invalidate_after_commit(self.session, self.cache, GROUP_PLANS)
        return PriceOut.of(price)

    async def _plan(self, plan_id: uuid.UUID, *, lock: bool = False) -> Plan:
        plan = await self.session.get(Plan, plan_id, with_for_update=lock)
        if plan is None:
            raise NotFound("No such plan.")
        return plan

    async def _refuse_if_referenced(self, plan: Plan, *, renamed: bool) -> None:
        """409 when `plan` is the default plan, or (`renamed`: its code would change or
        vanish) when subscriptions name it: both refer to plans by code."""
        config = await self.session.get(MonetizationConfig, 1)
        if config is not None and config.default_plan_code == plan.code:
            raise Conflict("This is the default plan; choose another default first.")
        if not renamed:
            return
        in_use = await self.session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.plan_code == plan.code)
        )
        if in_use:
            raise Conflict(
                f"{in_use} subscription(s) use this plan by its code; keep the code and archive "
                'it with PATCH {"active": false} instead.'
            )

    # --- coupons -----------------------------------------------------------------------

    async def coupons(self) -> list[CouponOut]:
        """All coupons by code."""
        rows = (await self.session.scalars(select(Coupon).order_by(Coupon.code))).all()
        return [CouponOut.of(c) for c in rows]

    async def create_coupon(
        self, data: CouponIn, *, actor: Who, request: Request | None = None
    ) -> CouponOut:
        """The new coupon.

        Raises:
            BadRequest: not exactly one discount, an amount without currency, a bad
                `expires_at` (400).
            DuplicateCode: the code is taken (409).
        """
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
        self.session.add(coupon)
        with _unique("coupon"):
            await self.session.flush()
        await record(
            self.session,
            actor=actor,
            entity="coupon",
            entity_id=coupon.code,
            action="create",
            after=snapshot(coupon),
            request=request,
        )
        return CouponOut.of(coupon)

    async def delete_coupon(self, code: str, *, actor: Who, request: Request | None = None) -> None:
        """Delete a coupon.

        Raises:
            NotFound: no such code (404).
        """
        coupon = await self.session.scalar(
            select(Coupon).where(Coupon.code == code).with_for_update()
        )
        if coupon is None:
            raise NotFound("No such coupon.")
        before = snapshot(coupon)
        await self.session.delete(coupon)
        await record(
            self.session,
            actor=actor,
            entity="coupon",
            entity_id=code,
            action="delete",
            before=before,
            request=request,
        )
