"""Login, logout, who-am-I and server-side sessions against PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text

from cortiware.app import create_app
from cortiware.auth import passwords
from cortiware.auth.passwords import PasswordWork
from cortiware.db.engine import create_engine
from cortiware.kv import KV, FallbackStore, KVConfig
from tests.conftest import SettingsFactory
from tests.integration.conftest import in_loop_client
from tests.support.auth import STAFF_PASSWORDS, create_owner, login, login_staff
from tests.support.servers import redis_server


def _use_session(client: AsyncTestClient[Litestar], session_id: str) -> None:
    client.cookies.clear()
    client.cookies.set("cw_session", session_id, domain="testserver.local")


@pytest.mark.parametrize("role", ["provider", "developer", "accountant"])
async def test_staff_login_returns_role_and_sets_cookies(
    client: AsyncTestClient[Litestar], role: str
) -> None:
    """A staff login answers 200 with role, username and CSRF token, and sets both cookies."""
    response = await client.post(
        "/api/auth/login", json={"username": role, "password": STAFF_PASSWORDS[role]}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == role
    assert body["username"] == role
    assert len(body["csrf_token"]) == 64
    set_cookies = response.headers.get_list("set-cookie")
    session = next(c for c in set_cookies if c.startswith("cw_session="))
    csrf = next(c for c in set_cookies if c.startswith("cw_csrf="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session or "SameSite=Lax" in session
    assert "Secure" not in session  # APP_ENV=test: no Secure, no __Host- prefix
    assert "HttpOnly" not in csrf
    assert csrf.split(";")[0] == f"cw_csrf={body['csrf_token']}"
    me = await client.get("/api/auth/me")
    assert me.json() == {"role": role, "username": role, "organization_id": None}


async def test_owner_logs_in_with_email(app: Litestar, client: AsyncTestClient[Litestar]) -> None:
    """An owner logs in with the e-mail (any case) and `me` names its organization."""
    owner = await create_owner(app)
    await login(client, owner.email.upper(), owner.password)
    me = (await client.get("/api/auth/me")).json()
    assert me == {
        "role": "owner",
        "username": owner.email,
        "organization_id": str(owner.organization_id),
    }


async def test_wrong_credentials_are_indistinguishable(
    app: Litestar, client: AsyncTestClient[Litestar]
) -> None:
    """Unknown user, wrong staff password and wrong owner password give the same 401 body."""
    owner = await create_owner(app)
    attempts = [
        {"username": "nobody@example.com", "password": "x" * 20},
        {"username": "provider", "password": "wrong-password"},
        {"username": owner.email, "password": "wrong-password"},
        {"username": "provider", "password": STAFF_PASSWORDS["developer"]},
    ]
    bodies = []
    for attempt in attempts:
        response = await client.post("/api/auth/login", json=attempt)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "set-cookie" not in response.headers
        bodies.append(response.json())
    assert all(body == bodies[0] for body in bodies)


async def test_login_timing_unknown_owner_matches_wrong_password(
    app: Litestar, client: AsyncTestClient[Litestar]
) -> None:
    """An unknown e-mail costs about as long as a known one with a wrong password (argon2)."""
    owner = await create_owner(app)

    async def median(username: str) -> float:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            await client.post("/api/auth/login", json={"username": username, "password": "bad"})
            samples.append(time.perf_counter() - started)
        return sorted(samples)[2]

    known, unknown = await median(owner.email), await median("ghost@example.com")
    assert 0.5 < unknown / known < 2.0


async def test_unknown_fields_are_rejected(client: AsyncTestClient[Litestar]) -> None:
    """A login body with an unknown field is 400 problem+json."""
    response = await client.post(
        "/api/auth/login", json={"username": "provider", "password": "x", "remember": True}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_me_without_session_is_401(client: AsyncTestClient[Litestar]) -> None:
    """`GET /api/auth/me` without a session is 401 problem+json."""
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["status"] == 401


async def test_logout_destroys_the_server_side_session(client: AsyncTestClient[Litestar]) -> None:
    """After logout the old session cookie no longer authenticates, even if replayed."""
    token = await login_staff(client, "provider")
    old_cookie = client.cookies.get("cw_session")
    assert old_cookie
    response = await client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    assert response.status_code == 204
    assert (await client.get("/api/auth/me")).status_code == 401
    _use_session(client, old_cookie)
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_login_rotates_the_session_id(client: AsyncTestClient[Litestar]) -> None:
    """Logging in again issues a new session id and kills the previous one."""
    token = await login_staff(client, "provider")
    first = client.cookies.get("cw_session")
    response = await client.post(
        "/api/auth/login",
        json={"username": "developer", "password": STAFF_PASSWORDS["developer"]},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    second = client.cookies.get("cw_session")
    assert second
    assert second != first
    assert first
    _use_session(client, first)
    assert (await client.get("/api/auth/me")).status_code == 401
    _use_session(client, second)
    assert (await client.get("/api/auth/me")).json()["role"] == "developer"


async def test_sessions_live_in_the_database_and_are_cached_in_redis(
    app: Litestar, client: AsyncTestClient[Litestar], redis_url: str, database_url: str
) -> None:
    """The session is a row keyed by a hash of the id, copied to Redis for at most a minute."""
    await login_staff(client, "accountant")
    session_id = client.cookies.get("cw_session")
    assert session_id
    key = hashlib.sha256(session_id.encode()).hexdigest()
    prefix = app.state["settings"].redis_key_prefix
    redis = Redis.from_url(redis_url)  # the test's own connection (the app's is on its loop)
    try:
        keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}session*")]
        ttl = await redis.ttl(keys[0])
    finally:
        await redis.aclose()
    assert keys == [f"{prefix}session:{key}"]
    assert 50 < ttl <= 60
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT key, role FROM user_sessions WHERE username = 'accountant'")
                )
            ).all()
    finally:
        await engine.dispose()
    assert (key, "accountant") in [tuple(row) for row in rows]
    assert all(session_id not in row[0] for row in rows)


async def test_a_logout_while_redis_hangs_still_revokes_the_session(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    """Redis hangs (SIGSTOP): the logout answers 204 from the fallback; once Redis is back,
    the logged-out session id (a stolen cookie) is refused, though Redis held it all along."""
    with redis_server(tmp_path) as redis:
        settings = make_settings(
            DATABASE_URL=database_url, REDIS_URL=redis.url, CORTIWARE_REDIS_TIMEOUT="0.2"
        )
        async with in_loop_client(create_app(settings)) as http:
            login = await http.post(
                "/api/auth/login",
                json={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
            )
            stolen = http.cookies["cw_session"]
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            assert (await http.get("/api/auth/me")).status_code == 200
            assert redis.process is not None
            os.kill(redis.process.pid, signal.SIGSTOP)
            try:
                logout = await http.post("/api/auth/logout", headers=csrf)
                health = (await http.get("/api/health")).json()
            finally:
                os.kill(redis.process.pid, signal.SIGCONT)
            assert logout.status_code == 204
            assert health["checks"]["redis"] == "degraded"
            deadline = time.monotonic() + 5
            while (await http.get("/api/health")).json()["checks"]["redis"] != "ok":
                assert time.monotonic() < deadline, "back on Redis within 5 s"
                await asyncio.sleep(0.1)
            http.cookies.clear()
            http.cookies.set("cw_session", stolen, domain="testserver.local")
            assert (await http.get("/api/auth/me")).status_code == 401
            admin = Redis.from_url(redis.url)
            keys = [key async for key in admin.scan_iter(match="*session:*")]
            await admin.aclose()
    assert keys == [], "the session record was deleted in Redis once it answered"


async def test_a_session_revoked_during_an_outage_is_not_written_back(
    redis_prefix: str, tmp_path: Path
) -> None:
    """A request that loaded the session before the logout and touches it after Redis is back
    must not revive it in Redis, where other instances would accept it."""
    with redis_server(tmp_path) as redis:
        kv = KV.from_url(
            redis.url, KVConfig(key_prefix=redis_prefix, connect_timeout=0.2, command_timeout=0.2)
        )
        admin = Redis.from_url(redis.url)
        try:
            store = FallbackStore(kv, namespace="sessions")
            await store.set("s1", b"record", expires_in=60)
            assert redis.process is not None
            os.kill(redis.process.pid, signal.SIGSTOP)
            try:
                await store.delete("s1")  # times out: remembered as revoked
            finally:
                os.kill(redis.process.pid, signal.SIGCONT)
            deadline = time.monotonic() + 5
            while await kv.check() != "ok":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await store.set("s1", b"touched", expires_in=60)
            assert [key async for key in admin.scan_iter(match="*s1*")] == []
        finally:
            await admin.aclose()
            await kv.aclose()


async def test_owner_login_is_503_with_retry_after_when_password_hashing_is_saturated(
    app: Litestar, client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too much argon2 queued in the process: 503 problem+json with `Retry-After`, neither a
    401 (the password may be right) nor a wait that piles up."""
    owner = await create_owner(app)
    full = PasswordWork(1, max_queued=0)
    monkeypatch.setattr(passwords, "password_work", full)
    try:
        response = await client.post(
            "/api/auth/login", json={"username": owner.email, "password": owner.password}
        )
    finally:
        full.shutdown()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "set-cookie" not in response.headers
    monkeypatch.undo()
    await login(client, owner.email, owner.password)


async def test_an_owner_hash_with_former_parameters_logs_in_and_is_rehashed(
    app: Litestar, client: AsyncTestClient[Litestar]
) -> None:
    """A hash made with argon2-cffi's defaults (64 MiB, t=3, p=4: this service's former
    parameters) still logs in, and the row then holds a hash with today's parameters."""
    owner = await create_owner(app)
    engine = create_engine(app.state["settings"].database_url, pool_size=1)
    update = text("UPDATE owners SET password_hash = :h WHERE id = :id")
    select_hash = text("SELECT password_hash FROM owners WHERE id = :id")
    try:
        async with engine.begin() as conn:
            former = PasswordHasher().hash(owner.password)
            await conn.execute(update, {"h": former, "id": owner.owner_id})
        await login(client, owner.email, owner.password)
        async with engine.connect() as conn:
            stored = (await conn.execute(select_hash, {"id": owner.owner_id})).scalar_one()
    finally:
        await engine.dispose()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
