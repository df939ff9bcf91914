"""Test helpers for sessions: create owners in the database and log identities in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cortiware.auth.credentials import hash_password
from cortiware.db.engine import create_engine
from cortiware.db.models import Organization, Owner
from tests.conftest import TEST_ENV

STAFF_PASSWORDS = {
    "provider": TEST_ENV["PROVIDER_PASSWORD"],
    "developer": TEST_ENV["DEVELOPER_PASSWORD"],
    "accountant": TEST_ENV["ACCOUNTANT_PASSWORD"],
}
OWNER_PASSWORD = "owner-password-for-tests-0123456789"


@dataclass(frozen=True)
class OwnerAccount:
    """An organization and its owner, created directly in the database."""

    organization_id: uuid.UUID
    owner_id: uuid.UUID
    email: str
    password: str = OWNER_PASSWORD


async def create_owner(app: Litestar, org_name: str = "Acme") -> OwnerAccount:
    """Insert an organization with one owner (unique e-mail) and return its ids."""
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    # An engine of the test's own event loop: the app's pool lives on the client's loop.
    engine = create_engine(app.state["settings"].database_url, pool_size=1)
    try:
        return await _insert_owner(engine, org_name, email)
    finally:
        await engine.dispose()


async def _insert_owner(engine: AsyncEngine, org_name: str, email: str) -> OwnerAccount:
    async with AsyncSession(engine) as db, db.begin():
        org = Organization(name=org_name)
        db.add(org)
        await db.flush()
        owner = Owner(
            organization_id=org.id,
            email=email,
            name="Olive Owner",
            password_hash=hash_password(OWNER_PASSWORD),
        )
        db.add(owner)
        await db.flush()
        return OwnerAccount(organization_id=org.id, owner_id=owner.id, email=email)


async def login(client: AsyncTestClient[Litestar], username: str, password: str) -> str:
    """Log `client` in (its cookie jar keeps the session) and return the CSRF token."""
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


async def login_staff(client: AsyncTestClient[Litestar], role: str) -> str:
    """Log in as the test environment's `role` staff account; return the CSRF token."""
    return await login(client, role, STAFF_PASSWORDS[role])
