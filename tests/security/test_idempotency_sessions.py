"""An `Idempotency-Key` replays only within the session that first used it, and never a
response that set cookies (login, logout): a reused key cannot resurrect another session's
answer (real PostgreSQL and Redis)."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.auth import STAFF_PASSWORDS, login_staff

Client = AsyncTestClient[Litestar]
PROVIDER = {"username": "provider", "password": STAFF_PASSWORDS["provider"]}


async def test_a_replayed_logout_ends_the_new_session(client: Client) -> None:
    """Logout with key K, log in again, logout with K: it runs and the new session ends."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    csrf = await login_staff(client, "provider")
    first = await client.post("/api/auth/logout", headers={**key, "X-CSRF-Token": csrf})
    assert first.status_code == 204
    csrf = await login_staff(client, "provider")
    assert (await client.get("/api/auth/me")).status_code == 200
    second = await client.post("/api/auth/logout", headers={**key, "X-CSRF-Token": csrf})
    assert second.status_code == 204
    assert "idempotent-replayed" not in second.headers
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_a_replayed_login_starts_its_own_session(client: Client) -> None:
    """Login twice with one key and body: the second sets its own cookie and CSRF token."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/api/auth/login", json=PROVIDER, headers=key)
    assert first.status_code == 200
    client.cookies.clear()
    second = await client.post("/api/auth/login", json=PROVIDER, headers=key)
    assert second.status_code == 200
    assert "idempotent-replayed" not in second.headers
    assert "set-cookie" in second.headers
    assert second.json()["csrf_token"] != first.json()["csrf_token"]
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_a_key_replays_within_its_session_only(client: Client) -> None:
    """The same principal's same request and key replays in its session, runs in another."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    code = f"SESS{uuid.uuid4().hex[:8].upper()}"
    body = {"code": code, "percent_off": 10}
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    created = await client.post("/api/provider/coupons", json=body, headers=key)
    assert created.status_code == 201, created.text
    again = await client.post("/api/provider/coupons", json=body, headers=key)
    assert again.headers.get("idempotent-replayed") == "true"
    client.cookies.clear()
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    other_session = await client.post("/api/provider/coupons", json=body, headers=key)
    assert "idempotent-replayed" not in other_session.headers
    assert other_session.status_code == 409  # it ran: the code exists already


async def test_anonymous_mutation_is_401_before_any_key_is_judged(client: Client) -> None:
    """An anonymous call to a guarded route gets 401 even when its key was used with another
    body: the guard answers before the idempotency store is asked."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/api/provider/plans", json={"code": "a", "name": "A"}, headers=key)
    again = await client.post("/api/provider/plans", json={"code": "b", "name": "B"}, headers=key)
    assert (first.status_code, again.status_code) == (401, 401)
