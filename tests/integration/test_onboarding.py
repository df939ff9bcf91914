"""Onboarding over HTTP: every error status of the contract, races, validation, funnel rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.engine import create_engine
from cortiware.db.models import Activity, OnboardingInvite, Organization, Owner
from cortiware.onboarding import service
from cortiware.onboarding.tokens import issue_token
from tests.conftest import TEST_ENV
from tests.integration.conftest import in_loop_client
from tests.support.auth import login_staff

PASSWORD = "a-long-owner-password-0123456789"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database for the test's own loop (the app runs on another)."""
    engine = create_engine(database_url, pool_size=2)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _invite(client: AsyncTestClient[Litestar], **body: Any) -> dict[str, Any]:
    """Create an invite as the provider and leave the client anonymous again."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    body.setdefault("email", f"inv-{uuid.uuid4().hex[:10]}@example.com")
    body.setdefault("org_name", "Initech")
    response = await client.post("/api/provider/invites", json=body)
    assert response.status_code == 201, response.text
    await client.post("/api/auth/logout")
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    result: dict[str, Any] = response.json()
    return result


async def _accept(
    client: AsyncTestClient[Litestar], token: str, **extra: Any
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/api/onboarding/accept",
        json={"token": token, "name": "Ada Owner", "password": PASSWORD, **extra},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    return response.status_code, response.json()


async def _last_activity_id(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return await session.scalar(select(func.max(Activity.id))) or 0


async def _failures(db: async_sessionmaker[AsyncSession], after: int) -> list[tuple[str, str]]:
    async with db() as session:
        rows = (
            await session.scalars(
                select(Activity).where(Activity.action == "invite_failed", Activity.id > after)
            )
        ).all()
    return [(r.details["stage"], r.details["reason"]) for r in rows]


async def test_every_onboarding_error_status(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """Malformed and tampered 400, unknown 404, expired 410, used 409, on verify and accept."""
    before = await _last_activity_id(db)
    good = await _invite(client)
    expired = await _invite(client)
    async with db() as session, session.begin():
        await session.execute(
            update(OnboardingInvite)
            .where(OnboardingInvite.id == uuid.UUID(expired["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    head, _, signature = good["token"].rpartition(".")
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    unknown = issue_token(TEST_ENV["ONBOARDING_TOKEN_SECRET"], datetime.now(UTC) + timedelta(1))
    forged = issue_token("f" * 64, datetime.now(UTC) + timedelta(days=1))
    cases = {
        "not-a-token": 400,
        tampered: 400,
        forged: 400,
        unknown: 404,
        expired["token"]: 410,
    }
    for token, status in cases.items():
        verify = await client.get("/api/onboarding/verify", params={"token": token})
        assert verify.status_code == status, (token, verify.text)
        assert verify.headers["content-type"].startswith("application/problem+json")
        assert verify.json()["status"] == status
        assert (await _accept(client, token))[0] == status

    assert (await _accept(client, good["token"]))[0] == 201
    used = await client.get("/api/onboarding/verify", params={"token": good["token"]})
    assert used.status_code == 409
    assert (await _accept(client, good["token"]))[0] == 409

    new = await _failures(db, before)
    for stage in ("verify", "accept"):
        reasons = sorted(reason for s, reason in new if s == stage)
        assert reasons == ["expired", "invalid", "invalid", "invalid", "unknown", "used"]


async def test_two_concurrent_accepts_create_one_organization(
    app: Litestar, db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two accepts of one invite at once, with different Idempotency-Keys: one 201, one 409."""
    # Both requests are held after verifying the token until both got there, so the claim
    # itself (the conditional UPDATE) decides, not the order of arrival.
    barrier = asyncio.Barrier(2)
    real_hash = service.hash_password

    async def hash_together(password: str) -> str:
        hashed = await real_hash(password)
        await asyncio.wait_for(barrier.wait(), 10)
        return hashed

    monkeypatch.setattr(service, "hash_password", hash_together)
    # In this loop: the test client would run requests one by one.
    async with in_loop_client(app) as http:
        login = await http.post(
            "/api/auth/login",
            json={"username": "provider", "password": TEST_ENV["PROVIDER_PASSWORD"]},
        )
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        org_name = f"Race {uuid.uuid4().hex[:6]}"
        created = await http.post(
            "/api/provider/invites",
            json={"email": f"race-{uuid.uuid4().hex[:8]}@example.com", "org_name": org_name},
        )
        invite = created.json()
        http.cookies.clear()
        del http.headers["X-CSRF-Token"]

        async def accept() -> httpx.Response:
            return await http.post(
                "/api/onboarding/accept",
                json={"token": invite["token"], "name": "Ada", "password": PASSWORD},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )

        results = await asyncio.gather(accept(), accept())
    assert sorted(r.status_code for r in results) == [201, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["detail"] == "This invite has been accepted already."
    async with db() as session:
        orgs = await session.scalar(
            select(func.count()).select_from(Organization).where(Organization.name == org_name)
        )
        owners = await session.scalar(
            select(func.count()).select_from(Owner).where(Owner.email == invite["email"])
        )
    assert (orgs, owners) == (1, 1)


async def test_accept_body_is_validated(client: AsyncTestClient[Litestar]) -> None:
    """Unknown fields and a short password are 400; a missing Idempotency-Key is 400."""
    invite = await _invite(client)
    assert (await _accept(client, invite["token"], role="provider"))[0] == 400
    status, body = await _accept(client, invite["token"], password="short")
    assert status == 400
    assert body["type"] == "about:blank"
    no_key = await client.post(
        "/api/onboarding/accept",
        json={"token": invite["token"], "name": "Ada", "password": PASSWORD},
    )
    assert no_key.status_code == 400
    assert (await _accept(client, invite["token"]))[0] == 201


async def test_invite_is_validated(client: AsyncTestClient[Litestar]) -> None:
    """Unknown fields, bad expiry 400; unknown plan, bad email 422; a taken email 409."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")

    async def create(**body: Any) -> int:
        body = {"email": f"v-{uuid.uuid4().hex[:8]}@example.com", "org_name": "V", **body}
        return (await client.post("/api/provider/invites", json=body)).status_code

    assert await create(admin=True) == 400
    assert await create(expires_in_hours=0) == 400
    assert await create(plan_code="no-such-plan") == 422
    assert await create(email="not-an-email") == 422
    invite = await _invite(client)
    assert (await _accept(client, invite["token"]))[0] == 201
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    assert await create(email=invite["email"]) == 409
    listed = (await client.get("/api/provider/invites")).json()
    mine = next(i for i in listed if i["id"] == invite["id"])
    assert mine["status"] == "accepted"
    assert "token" not in mine
