"""The whole onboarding journey over HTTP on PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.engine import create_engine
from cortiware.db.models import (
    Activity,
    AuditEntry,
    MonetizationConfig,
    OnboardingInvite,
    Owner,
    Subscription,
)
from cortiware.seed import DEFAULT_PLAN_CODE, seed
from tests.support.auth import login, login_staff

OWNER_PASSWORD = "a-long-owner-password-0123456789"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database for the test's own loop (the app runs on another)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def test_provider_invites_and_owner_reads_its_organization(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """Invite, verify, accept: org, owner, trial, audit and funnel rows; then the owner logs in."""
    async with db() as session, session.begin():
        await seed(session)
        # Other tests of this run edit the global config; state this test's precondition.
        config = await session.get(MonetizationConfig, 1)
        assert config is not None
        config.default_plan_code, config.trial_days = DEFAULT_PLAN_CODE, 14
    email = f"founder-{uuid.uuid4().hex[:8]}@example.com"

    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    created = await client.post(
        "/api/provider/invites", json={"email": email.upper(), "org_name": "Globex"}
    )
    assert created.status_code == 201, created.text
    invite = created.json()
    assert set(invite) == {"id", "email", "org_name", "token", "accept_url", "expires_at"}
    assert invite["email"] == email
    assert invite["accept_url"].startswith("http://testserver.local/onboarding?token=")
    token = invite["token"]
    before = (await client.get("/api/provider/organizations")).json()  # fills the cache
    assert email not in {o["owner_email"] for o in before}

    await client.post("/api/auth/logout")
    client.cookies.clear()
    del client.headers["X-CSRF-Token"]

    verified = await client.get("/api/onboarding/verify", params={"token": token})
    assert verified.status_code == 200
    assert verified.json() == {
        "email": email,
        "org_name": "Globex",
        "expires_at": invite["expires_at"],
    }

    accepted = await client.post(
        "/api/onboarding/accept",
        json={"token": token, "name": "Gina Founder", "password": OWNER_PASSWORD},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert accepted.status_code == 201, accepted.text
    org_id = uuid.UUID(accepted.json()["organization_id"])
    owner_id = uuid.UUID(accepted.json()["owner_id"])

    async with db() as session:
        owner = await session.get(Owner, owner_id)
        assert owner is not None
        assert owner.organization_id == org_id
        assert owner.password_hash.startswith("$argon2id$")
        sub = await session.scalar(
            select(Subscription).where(Subscription.organization_id == org_id)
        )
        assert sub is not None
        assert sub.status == "trialing"
        assert sub.plan_code == DEFAULT_PLAN_CODE
        assert sub.trial_end is not None
        assert 13 <= (sub.trial_end - sub.created_at).days <= 14
        stored = await session.scalar(
            select(OnboardingInvite).where(OnboardingInvite.id == uuid.UUID(invite["id"]))
        )
        assert stored is not None
        assert stored.used_at is not None
        assert stored.token_hash != token
        assert token not in stored.token_hash
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.organization_id == org_id))
        ).all()
        assert {(a.entity, a.action) for a in audit} == {
            ("onboarding_invite", "accept"),
            ("organization", "create"),
            ("owner", "create"),
            ("subscription", "create"),
        }
        owner_row = next(a for a in audit if a.entity == "owner")
        assert owner_row.changes["after"]["password_hash"] == "[redacted]"
        assert all(a.request_id and a.ip for a in audit)
        created_audit = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.entity == "onboarding_invite",
                AuditEntry.entity_id == invite["id"],
                AuditEntry.action == "create",
            )
        )
        assert created_audit is not None
        assert created_audit.actor == "provider"
        assert created_audit.changes["after"]["token_hash"] == "[redacted]"
        funnel = (
            await session.scalars(
                select(Activity.action).where(
                    Activity.subject == email, Activity.action.like("invite_%")
                )
            )
        ).all()
        assert sorted(funnel) == ["invite_accepted", "invite_created", "invite_verified"]

    client.headers["X-CSRF-Token"] = await login(client, email, OWNER_PASSWORD)
    me = (await client.get("/api/auth/me")).json()
    assert me == {"role": "owner", "username": email, "organization_id": str(org_id)}
    organization = await client.get("/api/owner/organization")
    assert organization.status_code == 200
    assert organization.json()["id"] == str(org_id)
    assert organization.json()["name"] == "Globex"
    assert [o["email"] for o in organization.json()["owners"]] == [email]
    assert "password_hash" not in organization.text
    subscription = await client.get("/api/owner/subscription")
    assert subscription.status_code == 200
    assert subscription.json()["status"] == "trialing"

    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    listed = (await client.get("/api/provider/organizations")).json()
    mine = next(o for o in listed if o["id"] == str(org_id))
    assert mine["subscription_status"] == "trialing"
    assert mine["owner_email"] == email
