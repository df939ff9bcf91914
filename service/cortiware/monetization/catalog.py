"""Reading the catalog: the global config and plans with their prices."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.audit.retention import effective_retention_days
from cortiware.db.models import MonetizationConfig, Plan, Price
from cortiware.monetization.schemas import ConfigOut, PlanOut

__all__ = ["load_config", "load_plans"]


async def load_config(session: AsyncSession, default_retention_days: int) -> ConfigOut:
    """The global config; the model's defaults when it was never seeded."""
    config = await session.get(MonetizationConfig, 1)
    retention = await effective_retention_days(session, default_retention_days)
    if config is None:
        return ConfigOut(
            default_plan_code=None,
            trial_days=14,
            currency="usd",
            audit_retention_days=retention,
            updated_at=None,
        )
    return ConfigOut(
        default_plan_code=config.default_plan_code,
        trial_days=config.trial_days,
        currency=config.currency,
        audit_retention_days=retention,
        updated_at=config.updated_at,
    )


async def load_plans(session: AsyncSession, *, active_only: bool) -> list[PlanOut]:
    """Plans by code with their prices (only active ones when `active_only`)."""
    plan_query = select(Plan).order_by(Plan.code)
    price_query = select(Price).order_by(Price.interval, Price.amount_cents, Price.created_at)
    if active_only:
        plan_query = plan_query.where(Plan.active.is_(True))
        price_query = price_query.where(Price.active.is_(True))
    plans = list((await session.scalars(plan_query)).all())
    prices: dict[object, list[Price]] = defaultdict(list)
    if plans:
        price_query = price_query.where(Price.plan_id.in_([p.id for p in plans]))
        for price in (await session.scalars(price_query)).all():
            prices[price.plan_id].append(price)
    return [PlanOut.of(plan, prices[plan.id]) for plan in plans]
