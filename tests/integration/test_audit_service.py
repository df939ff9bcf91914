"""`AuditService` called directly on PostgreSQL and Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.audit import SYSTEM
from cortiware.audit.service import AuditService
from cortiware.cache import Cache
from cortiware.db.session import transaction
from cortiware.errors import BadRequest
from cortiware.monetization.service import MonetizationService

Sessions = async_sessionmaker[AsyncSession]


async def test_retention_change_reaches_the_cached_config_and_the_log(
    sessions: Sessions, cache: Cache
) -> None:
    """Storing a retention of 123 days reads back 123 from the cached global config, and the
    change is the newest `audit_retention` row."""
    async with sessions() as session:
        before = (await AuditService(session=session, default_retention_days=90).retention()).days
        cached = await MonetizationService(
            session=session, default_retention_days=90, cache=cache
        ).config()
    assert cached.audit_retention_days == before
    try:
        async with transaction(sessions) as session:
            audit = AuditService(session=session, default_retention_days=90, cache=cache)
            assert (await audit.set_retention(123, actor=SYSTEM)).days == 123
        async with sessions() as session:
            config = await MonetizationService(
                session=session, default_retention_days=90, cache=cache
            ).config()
            page = await AuditService(session=session, default_retention_days=90).page(
                entity="audit_retention", limit=1
            )
        assert config.audit_retention_days == 123
        assert page.items[0].changes["after"] == {"days": 123}
    finally:
        async with transaction(sessions) as session:
            await AuditService(session=session, default_retention_days=90).set_retention(
                before, actor=SYSTEM
            )


async def test_bad_bounds_and_cursors_are_bad_requests(sessions: Sessions) -> None:
    """A bound without a timezone, one UTC cannot express, and a cursor that is not one
    raise BadRequest (400)."""
    async with sessions() as session:
        audit = AuditService(session=session, default_retention_days=90)
        with pytest.raises(BadRequest):
            await audit.page(cursor="not-a-cursor")
        with pytest.raises(BadRequest):
            await audit.page(since=datetime(2026, 1, 1))
        overflowing = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23)))
        with pytest.raises(BadRequest):
            await audit.page(until=overflowing)
