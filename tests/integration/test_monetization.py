"""Monetization over HTTP: config, plans, prices, coupons, the cached public list, audit rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.engine import create_engine
from cortiware.db.models import AuditEntry, Organization, Plan, Price, Subscription
from cortiware.db.session import DB_SESSIONMAKER
from tests.integration.conftest import in_loop_client
from tests.support.auth import login_staff


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database for the test's own loop (the app runs on another)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@pytest.fixture
async def provider(client: AsyncTestClient[Litestar]) -> AsyncTestClient[Litestar]:
    """The client, logged in as the provider with its CSRF header set."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    return client


def _code() -> str:
    return f"plan-{uuid.uuid4().hex[:8]}"


async def test_plan_lifecycle_and_public_list_cache(
    provider: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """A new plan and price appear in the cached public list at once; archiving removes it."""
    code = _code()
    assert code not in {p["code"] for p in (await provider.get("/api/plans")).json()}
    created = await provider.post(
        "/api/provider/plans", json={"code": code, "name": "Pro", "features": ["SSO"]}
    )
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    price = await provider.post(
        f"/api/provider/plans/{plan_id}/prices", json={"amount_cents": 9900, "interval": "year"}
    )
    assert price.status_code == 201
    assert price.json()["currency"] == "usd"
    public = {p["code"]: p for p in (await provider.get("/api/plans")).json()}
    assert public[code]["prices"][0]["amount_cents"] == 9900
    assert public[code]["features"] == ["SSO"]

    patched = await provider.patch(f"/api/provider/plans/{plan_id}", json={"active": False})
    assert patched.status_code == 200
    assert patched.json()["active"] is False
    assert code not in {p["code"] for p in (await provider.get("/api/plans")).json()}
    assert code in {p["code"] for p in (await provider.get("/api/provider/plans")).json()}

    assert (await provider.delete(f"/api/provider/plans/{plan_id}")).status_code == 204
    assert (await provider.delete(f"/api/provider/plans/{plan_id}")).status_code == 404
    async with db() as session:
        assert await session.get(Plan, uuid.UUID(plan_id)) is None
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity == "plan", AuditEntry.entity_id == plan_id)
                .order_by(AuditEntry.id)
            )
        ).all()
    assert list(actions) == ["create", "update", "delete"]


async def test_duplicate_codes_conflict(provider: AsyncTestClient[Litestar]) -> None:
    """A second plan or coupon with a taken code is 409 problem+json; a rename onto one too."""
    code = _code()
    first = await provider.post("/api/provider/plans", json={"code": code, "name": "A"})
    assert first.status_code == 201
    duplicate = await provider.post("/api/provider/plans", json={"code": code, "name": "B"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")
    other = await provider.post("/api/provider/plans", json={"code": _code(), "name": "C"})
    renamed = await provider.patch(f"/api/provider/plans/{other.json()['id']}", json={"code": code})
    assert renamed.status_code == 409

    coupon = f"SAVE{uuid.uuid4().hex[:6]}"
    body = {"code": coupon, "percent_off": 20}
    assert (await provider.post("/api/provider/coupons", json=body)).status_code == 201
    assert (await provider.post("/api/provider/coupons", json=body)).status_code == 409


async def test_coupons(provider: AsyncTestClient[Litestar]) -> None:
    """Exactly one discount kind is required; coupons list and delete by code."""
    code = f"OFF{uuid.uuid4().hex[:6]}"
    both = {"code": code, "percent_off": 10, "amount_off_cents": 500, "currency": "usd"}
    assert (await provider.post("/api/provider/coupons", json=both)).status_code == 400
    assert (await provider.post("/api/provider/coupons", json={"code": code})).status_code == 400
    no_currency = {"code": code, "amount_off_cents": 500}
    assert (await provider.post("/api/provider/coupons", json=no_currency)).status_code == 400
    fixed = {"code": code, "amount_off_cents": 500, "currency": "eur", "duration": "forever"}
    created = await provider.post("/api/provider/coupons", json=fixed)
    assert created.status_code == 201
    assert created.json()["duration"] == "forever"
    assert code in {c["code"] for c in (await provider.get("/api/provider/coupons")).json()}
    assert (await provider.delete(f"/api/provider/coupons/{code}")).status_code == 204
    assert (await provider.delete(f"/api/provider/coupons/{code}")).status_code == 404


async def test_config_read_and_write(provider: AsyncTestClient[Litestar]) -> None:
    """PUT changes only the given fields; a default plan must exist; unknown fields are 400."""
    code = _code()
    await provider.post("/api/provider/plans", json={"code": code, "name": "Default"})
    cached = await provider.get("/api/provider/monetization/config")  # fills the cache
    assert cached.json()["default_plan_code"] != code
    updated = await provider.put(
        "/api/provider/monetization/config",
        json={"default_plan_code": code, "trial_days": 30, "audit_retention_days": 400},
    )
    assert updated.status_code == 200, updated.text
    config = (await provider.get("/api/provider/monetization/config")).json()
    assert config["default_plan_code"] == code
    assert config["trial_days"] == 30
    assert config["audit_retention_days"] == 400
    assert (await provider.get("/api/provider/audit/retention")).json() == {"days": 400}
    bad_plan = {"default_plan_code": "no-such-plan"}
    put = provider.put
    assert (await put("/api/provider/monetization/config", json=bad_plan)).status_code == 422
    assert (await put("/api/provider/monetization/config", json={"x": 1})).status_code == 400
    assert (
        await put("/api/provider/monetization/config", json={"trial_days": -1})
    ).status_code == 400
    in_use = await provider.delete(f"/api/provider/plans/{(await _plan_id(provider, code))}")
    assert in_use.status_code == 409  # the default plan cannot be deleted
    await put("/api/provider/monetization/config", json={"trial_days": 14})


async def _plan_id(client: AsyncTestClient[Litestar], code: str) -> str:
    plans = (await client.get("/api/provider/plans")).json()
    return str(next(p["id"] for p in plans if p["code"] == code))


async def test_the_default_plan_and_plans_in_use_keep_their_code(
    provider: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """The config and subscriptions refer to plans by code: renaming or archiving the default
    plan, renaming a plan in use, or choosing an archived plan as default is refused (a
    rename used to leave the default pointing at nothing, and then let it be deleted)."""
    config = (await provider.get("/api/provider/monetization/config")).json()
    default, other = _code(), _code()
    plans = {}
    for code in (default, other):
        created = await provider.post("/api/provider/plans", json={"code": code, "name": code})
        assert created.status_code == 201, created.text
        plans[code] = created.json()["id"]
    url = "/api/provider/monetization/config"
    assert (await provider.put(url, json={"default_plan_code": default})).status_code == 200
    try:
        renamed = await provider.patch(f"/api/provider/plans/{plans[default]}", json={"code": "x1"})
        archived = await provider.patch(
            f"/api/provider/plans/{plans[default]}", json={"active": False}
        )
        deleted = await provider.delete(f"/api/provider/plans/{plans[default]}")
        assert (renamed.status_code, archived.status_code, deleted.status_code) == (409, 409, 409)
        assert (await provider.get(url)).json()["default_plan_code"] == default

        async with db() as session, session.begin():
            org = Organization(name="Uses other")
            session.add(org)
            await session.flush()
            session.add(Subscription(organization_id=org.id, status="active", plan_code=other))
        in_use = await provider.patch(f"/api/provider/plans/{plans[other]}", json={"code": "x2"})
        assert in_use.status_code == 409
        archive = await provider.patch(
            f"/api/provider/plans/{plans[other]}", json={"active": False}
        )
        assert archive.status_code == 200  # archiving a plan in use is the way out
        inactive = await provider.put(url, json={"default_plan_code": other})
        assert inactive.status_code == 422
    finally:
        restore = {"default_plan_code": config["default_plan_code"]}
        assert (await provider.put(url, json=restore)).status_code == 200


async def test_a_price_racing_its_plans_deletion_is_404_or_deleted_with_it(
    app: Litestar, db: async_sessionmaker[AsyncSession]
) -> None:
    """Adding a price while its plan is deleted: either order is fine, never a 500 from the
    foreign key (the plan is locked while the price is added)."""
    async with in_loop_client(app) as http:
        http.headers["X-CSRF-Token"] = await login_staff(http, "provider")  # type: ignore[arg-type]
        for _ in range(15):
            plan = await http.post("/api/provider/plans", json={"code": _code(), "name": "R"})
            plan_id = plan.json()["id"]
            deleted, priced = await asyncio.gather(
                http.delete(f"/api/provider/plans/{plan_id}"),
                http.post(f"/api/provider/plans/{plan_id}/prices", json={"amount_cents": 100}),
            )
            assert deleted.status_code == 204, deleted.text
            assert priced.status_code in (201, 404), priced.text
    async with db() as session:
        orphans = await session.scalar(
            select(func.count()).select_from(Price).where(Price.plan_id.not_in(select(Plan.id)))
        )
    assert orphans == 0


async def test_a_cached_public_list_opens_no_database_session(
    app: Litestar, client: AsyncTestClient[Litestar]
) -> None:
    """Once cached, `GET /api/plans` is answered without a database session, with the same
    body and the API's headers (request id, rate limit, nosniff, no-store)."""
    first = await client.get("/api/plans")
    assert first.status_code == 200

    class NoSessions(async_sessionmaker[AsyncSession]):
        def __call__(self, **_: object) -> AsyncSession:
            raise AssertionError("a database session was opened for a cached read")

    DB_SESSIONMAKER.set(app, NoSessions())
    again = await client.get("/api/plans")
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    for header in ("x-request-id", "ratelimit", "ratelimit-policy", "ratelimit-remaining"):
        assert header in again.headers
    assert again.headers["x-content-type-options"] == "nosniff"
    assert again.headers["cache-control"] == "no-store"
