"""`MonetizationService` called directly on PostgreSQL and Redis: errors at its boundary,
audit rows in the caller's transaction, cache invalidation only after the commit."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.audit import SYSTEM
from cortiware.cache import Cache
from cortiware.db.models import AuditEntry, Plan
from cortiware.db.session import transaction
from cortiware.errors import NotFound
from cortiware.monetization.schemas import PlanIn, PlanPatch, PriceIn
from cortiware.monetization.service import DuplicateCode, MonetizationService

Sessions = async_sessionmaker[AsyncSession]


def _service(session: AsyncSession, cache: Cache | None = None) -> MonetizationService:
    return MonetizationService(session=session, default_retention_days=90, cache=cache)


def _code() -> str:
    return f"svc{uuid.uuid4().hex[:10]}"


async def test_duplicate_code_is_a_domain_error_and_the_first_plan_is_kept(
    sessions: Sessions,
) -> None:
    """A second plan with a taken code raises `DuplicateCode` (409); the first stays, audited."""
    code = _code()
    async with transaction(sessions) as session:
        created = await _service(session).create_plan(PlanIn(code=code, name="A"), actor=SYSTEM)
    with pytest.raises(DuplicateCode) as raised:
        async with transaction(sessions) as session:
            await _service(session).create_plan(PlanIn(code=code, name="B"), actor=SYSTEM)
    assert raised.value.status_code == 409
    async with sessions() as session:
        names = (await session.scalars(select(Plan.name).where(Plan.code == code))).all()
        audited = await session.scalar(
            select(func.count()).where(
                AuditEntry.entity == "plan", AuditEntry.entity_id == str(created.id)
            )
        )
    assert names == ["A"]
    assert audited == 1


async def test_public_plans_are_invalidated_after_the_commit_only(
    sessions: Sessions, cache: Cache
) -> None:
    """A plan change shows in the cached public list once committed; a rolled-back change
    leaves the cached list as it was."""
    code = _code()
    async with transaction(sessions) as session:
        plan = await _service(session, cache).create_plan(
            PlanIn(code=code, name="Cached"), actor=SYSTEM
        )
    async with sessions() as session:
        assert code in {p.code for p in await _service(session, cache).public_plans()}

    class Abort(Exception):
        """Rolls the transaction back."""

    async def deactivate_then_abort() -> None:
        async with transaction(sessions) as session:
            await _service(session, cache).update_plan(
                plan.id, PlanPatch(active=False), actor=SYSTEM
            )
            raise Abort

    with pytest.raises(Abort):
        await deactivate_then_abort()
    async with sessions() as session:
        assert code in {p.code for p in await _service(session, cache).public_plans()}

    async with transaction(sessions) as session:
        await _service(session, cache).update_plan(plan.id, PlanPatch(active=False), actor=SYSTEM)
    async with sessions() as session:
        assert code not in {p.code for p in await _service(session, cache).public_plans()}


async def test_price_of_an_unknown_plan_is_not_found(sessions: Sessions) -> None:
    """Adding a price to a plan that does not exist raises NotFound (404)."""
    with pytest.raises(NotFound):
        async with transaction(sessions) as session:
            await _service(session).create_price(
                uuid.uuid4(), PriceIn(amount_cents=100, interval="month"), actor=SYSTEM
            )
