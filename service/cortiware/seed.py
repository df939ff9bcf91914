"""Idempotent seed: the global monetization config, a default plan and its price."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db.models import MonetizationConfig, Plan, Price

__all__ = ["DEFAULT_PLAN_CODE", "seed"]

DEFAULT_PLAN_CODE = "standard"


async def seed(session: AsyncSession) -> list[str]:
    """Create what is missing and return what was created; never overwrites edits."""
    created: list[str] = []
    plan = await session.scalar(select(Plan).where(Plan.code == DEFAULT_PLAN_CODE))
    if plan is None:
        plan = Plan(
            code=DEFAULT_PLAN_CODE,
            name="Standard",
            description="Everything a growing organization needs.",
            features=["Unlimited users", "Audit log", "Email support"],
        )
        session.add(plan)
        await session.flush()
        created.append(f"plan {DEFAULT_PLAN_CODE}")
    has_price = await session.scalar(select(Price.id).where(Price.plan_id == plan.id).limit(1))
    if has_price is None:
        session.add(Price(plan_id=plan.id, amount_cents=4900, currency="usd", interval="month"))
        created.append(f"price for {DEFAULT_PLAN_CODE}")
    if await session.get(MonetizationConfig, 1) is None:
        session.add(MonetizationConfig(id=1, default_plan_code=DEFAULT_PLAN_CODE, trial_days=14))
        created.append("global monetization config")
    await session.flush()
    return created
