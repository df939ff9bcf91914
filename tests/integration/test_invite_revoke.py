"""Revoking an invite over HTTP on PostgreSQL: its link stops working, a repeat changes
nothing, and nobody but the provider (with the CSRF token) can do it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.models import AuditEntry, OnboardingInvite, Organization
from cortiware.onboarding import service
from tests.conftest import TEST_ENV
from tests.integration.conftest import in_loop_client
from tests.support.auth import create_owner, login, login_staff

PASSWORD = "a-long-owner-password-0123456789"


async def _as_provider(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")


def _anonymous(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)


async def _invite(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    await _as_provider(client)
    body = {"email": f"rev-{uuid.uuid4().hex[:10]}@example.com", "org_name": "Revoked Org"}
    response = await client.post("/api/provider/invites", json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def _revoke_rows(sessions: async_sessionmaker[AsyncSession], invite_id: str) -> int:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "onboarding_invite",
                AuditEntry.entity_id == invite_id,
                AuditEntry.action == "revoke",
            )
        )
        return len(rows.all())


async def test_revoked_invite_link_answers_410_and_a_repeat_changes_nothing(
    client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """After a revoke, verify and accept answer 410 "revoked"; revoking again answers the same
    invite and writes no second audit row; the list shows it revoked."""
    invite = await _invite(client)
    first = await client.post(f"/api/provider/invites/{invite['id']}/revoke")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "revoked"
    assert first.json()["revoked_at"] is not None
    again = await client.post(f"/api/provider/invites/{invite['id']}/revoke")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert await _revoke_rows(sessions, invite["id"]) == 1
    listed = {i["id"]: i for i in (await client.get("/api/provider/invites")).json()}
    assert listed[invite["id"]]["status"] == "revoked"

    _anonymous(client)
    verify = await client.get("/api/onboarding/verify", params={"token": invite["token"]})
    assert verify.status_code == 410
    assert verify.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in verify.json()["detail"]
    accept = await client.post(
        "/api/onboarding/accept",
        json={"token": invite["token"], "name": "Late", "password": PASSWORD},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert accept.status_code == 410
    async with sessions() as session:
        row = await session.get(OnboardingInvite, uuid.UUID(invite["id"]))
    assert row is not None
    assert row.used_at is None
    assert row.organization_id is None


async def test_accepted_invite_cannot_be_revoked_and_unknown_is_404(
    client: AsyncTestClient[Litestar],
) -> None:
    """An accepted invite answers 409 (its organization exists); an unknown id 404."""
    invite = await _invite(client)
    _anonymous(client)
    accept = await client.post(
        "/api/onboarding/accept",
        json={"token": invite["token"], "name": "Ada", "password": PASSWORD},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert accept.status_code == 201, accept.text
    await _as_provider(client)
    refused = await client.post(f"/api/provider/invites/{invite['id']}/revoke")
    assert refused.status_code == 409
    unknown = await client.post(f"/api/provider/invites/{uuid.uuid4()}/revoke")
    assert unknown.status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "owner", "accountant", "developer"])
async def test_only_the_provider_can_revoke(
    client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession], who: str
) -> None:
    """Anonymous is 401; an owner, accountant or developer (with a valid CSRF token) 403;
    the invite stays pending and its link keeps working."""
    invite = await _invite(client)
    _anonymous(client)
    if who == "owner":
        account = await create_owner(client.app, "Attacker Org")
        client.headers["X-CSRF-Token"] = await login(client, account.email, account.password)
    elif who != "anonymous":
        client.headers["X-CSRF-Token"] = await login_staff(client, who)
    answer = await client.post(f"/api/provider/invites/{invite['id']}/revoke")
    assert answer.status_code == (401 if who == "anonymous" else 403)
    assert await _revoke_rows(sessions, invite["id"]) == 0
    _anonymous(client)
    verify = await client.get("/api/onboarding/verify", params={"token": invite["token"]})
    assert verify.status_code == 200


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"X-CSRF-Token": ""}, "no token"),
        ({"X-CSRF-Token": "f" * 64}, "forged token"),
        ({"Origin": "https://evil.example"}, "cross-site origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site fetch"),
    ],
)
async def test_revoke_without_csrf_proof_is_refused(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    headers: dict[str, str],
    why: str,
) -> None:
    """The provider's own session cannot be used from another site: 403, nothing revoked."""
    invite = await _invite(client)
    answer = await client.post(f"/api/provider/invites/{invite['id']}/revoke", headers=headers)
    assert answer.status_code == 403, why
    assert await _revoke_rows(sessions, invite["id"]) == 0


async def test_revoke_form_revokes_and_redirects_with_a_notice(
    client: AsyncTestClient[Litestar],
) -> None:
    """The console's Revoke button posts a form: 303 to the invite list, which then shows
    the invite revoked and the notice; the link answers 410."""
    invite = await _invite(client)
    token = client.headers.pop("X-CSRF-Token")
    answer = await client.post(
        f"/provider/invites/{invite['id']}/revoke",
        data={"_csrf": token, "_form_key": uuid.uuid4().hex},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/provider/invites"
    page = await client.get("/provider/invites")
    assert "revoked; its link no longer works" in page.text
    _anonymous(client)
    verify = await client.get("/api/onboarding/verify", params={"token": invite["token"]})
    assert verify.status_code == 410


async def test_revoke_between_verify_and_claim_wins_over_the_accept(
    app: Litestar, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An accept that verified the token before the revoke, and claims it after, answers 410
    revoked and creates no organization: the claim re-checks `revoked_at` atomically."""
    hashing, revoked = asyncio.Event(), asyncio.Event()
    real_hash = service.hash_password

    async def hash_then_wait(password: str) -> str:
        hashed = await real_hash(password)
        hashing.set()
        await asyncio.wait_for(revoked.wait(), 10)
        return hashed

    monkeypatch.setattr(service, "hash_password", hash_then_wait)
    org_name = f"Race {uuid.uuid4().hex[:6]}"
    async with in_loop_client(app) as provider:
        login = await provider.post(
            "/api/auth/login",
            json={"username": "provider", "password": TEST_ENV["PROVIDER_PASSWORD"]},
        )
        provider.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        body = {"email": f"race-{uuid.uuid4().hex[:8]}@example.com", "org_name": org_name}
        invite = (await provider.post("/api/provider/invites", json=body)).json()
        invitee = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.2", 123)),
            base_url="http://testserver.local",
        )
        async with invitee:
            accepting = asyncio.create_task(
                invitee.post(
                    "/api/onboarding/accept",
                    json={"token": invite["token"], "name": "Ada", "password": PASSWORD},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
            )
            await asyncio.wait_for(hashing.wait(), 10)
            revoke = await provider.post(f"/api/provider/invites/{invite['id']}/revoke")
            revoked.set()
            accepted = await accepting
    assert revoke.status_code == 200, revoke.text
    assert accepted.status_code == 410, accepted.text
    assert "revoked" in accepted.json()["detail"]
    async with sessions() as session:
        orgs = await session.scalar(
            select(func.count()).select_from(Organization).where(Organization.name == org_name)
        )
    assert orgs == 0
