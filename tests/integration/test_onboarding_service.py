"""`OnboardingService` and `OrganizationService` called directly on PostgreSQL and Redis."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.activity import INVITE_FAILED
from cortiware.auth import Principal, Role
from cortiware.cache import Cache
from cortiware.db.models import Activity
from cortiware.db.session import transaction
from cortiware.errors import NotFound
from cortiware.onboarding.errors import InviteTokenInvalid, InviteUsed
from cortiware.onboarding.schemas import AcceptIn, InviteIn
from cortiware.onboarding.service import OnboardingService
from cortiware.organizations.service import OrganizationService
from cortiware.settings import Settings

Sessions = async_sessionmaker[AsyncSession]
PROVIDER = Principal(role=Role.PROVIDER, username="provider")
PASSWORD = "a-long-owner-password-0123"


def _onboarding(
    session: AsyncSession, settings: Settings, sessions: Sessions, cache: Cache | None = None
) -> OnboardingService:
    return OnboardingService(session=session, settings=settings, failures=sessions, cache=cache)


async def test_accepted_invite_shows_in_the_cached_organization_list(
    sessions: Sessions, cache: Cache, pg_settings: Settings
) -> None:
    """Invite, verify, accept: the new organization appears in the list cached before it."""
    email = f"svc-{uuid.uuid4().hex[:8]}@example.com"
    async with transaction(sessions) as session:
        invite = await _onboarding(session, pg_settings, sessions, cache).invite(
            InviteIn(email=email, org_name="Service Org"), actor=PROVIDER
        )
    async with sessions() as session:
        before = await OrganizationService(session=session, cache=cache).summaries()
    async with transaction(sessions) as session:
        verified = await _onboarding(session, pg_settings, sessions, cache).verify(invite.token)
    assert verified.email == email
    async with transaction(sessions) as session:
        accepted = await _onboarding(session, pg_settings, sessions, cache).accept(
            AcceptIn(token=invite.token, name="Pat", password=PASSWORD)
        )
    async with sessions() as session:
        organizations = OrganizationService(session=session, cache=cache)
        after = await organizations.summaries()
        detail = await organizations.cached_detail(accepted.organization_id)
        subscription = await organizations.subscription(accepted.organization_id)
    assert accepted.organization_id not in {o.id for o in before}
    assert accepted.organization_id in {o.id for o in after}
    assert [o.email for o in detail.owners] == [email]
    assert subscription.status == "trialing"
    with pytest.raises(InviteUsed):
        async with transaction(sessions) as session:
            await _onboarding(session, pg_settings, sessions).accept(
                AcceptIn(token=invite.token, name="Pat", password=PASSWORD)
            )


async def test_a_failed_verify_is_recorded_although_its_transaction_rolls_back(
    sessions: Sessions, pg_settings: Settings
) -> None:
    """A tampered token raises InviteTokenInvalid (400) and still leaves an `invite_failed`
    funnel row, written in a transaction of its own."""
    token = f"forged.{uuid.uuid4().hex}"
    with pytest.raises(InviteTokenInvalid):
        async with transaction(sessions) as session:
            await _onboarding(session, pg_settings, sessions).verify(token)
    async with sessions() as session:
        rows = (
            await session.scalars(select(Activity.details).where(Activity.action == INVITE_FAILED))
        ).all()
    assert any(d.get("stage") == "verify" and d.get("reason") == "invalid" for d in rows)


async def test_unknown_organization_is_not_found(sessions: Sessions) -> None:
    """Detail and subscription of an organization that does not exist raise NotFound."""
    async with sessions() as session:
        organizations = OrganizationService(session=session)
        with pytest.raises(NotFound):
            await organizations.detail(uuid.uuid4())
        with pytest.raises(NotFound):
            await organizations.subscription(uuid.uuid4())
