"""Editing, archiving and linking prices to Stripe over HTTP on PostgreSQL, and who may."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.db.models import AuditEntry, Price
from tests.support.auth import create_owner, login, login_staff


async def _as_provider(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")


async def _plan_with_price(client: AsyncTestClient[Litestar]) -> tuple[str, dict[str, Any]]:
    await _as_provider(client)
    plan = await client.post(
        "/api/provider/plans", json={"code": f"pe-{uuid.uuid4().hex[:8]}", "name": "Edit"}
    )
    assert plan.status_code == 201, plan.text
    plan_id: str = plan.json()["id"]
    price = await client.post(
        f"/api/provider/plans/{plan_id}/prices", json={"amount_cents": 4900, "currency": "usd"}
    )
    assert price.status_code == 201, price.text
    made: dict[str, Any] = price.json()
    return plan_id, made


async def test_edit_link_and_archive_a_price(
    client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """An unlinked price changes freely; linked, its amount is fixed (409) until it is
    unlinked; archived, it leaves the public list; each change is one audit row."""
    plan_id, price = await _plan_with_price(client)
    url = f"/api/provider/plans/{plan_id}/prices/{price['id']}"
    edited = await client.patch(url, json={"amount_cents": 5900, "interval": "year"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["amount_cents"], edited.json()["interval"]) == (5900, "year")

    stripe_id = f"price_{uuid.uuid4().hex[:12]}"
    linked = await client.patch(url, json={"stripe_price_id": stripe_id})
    assert linked.json()["stripe_price_id"] == stripe_id
    fixed = await client.patch(url, json={"amount_cents": 6900})
    assert fixed.status_code == 409
    assert "linked to Stripe price" in fixed.json()["detail"]
    same = await client.patch(url, json={"amount_cents": 5900, "currency": "usd"})
    assert same.status_code == 200  # unchanged values are not a change

    public = {p["id"]: p for p in (await client.get("/api/plans")).json()}
    assert [p["id"] for p in public[plan_id]["prices"]] == [price["id"]]
    archived = await client.patch(url, json={"active": False})
    assert archived.json()["active"] is False
    public = {p["id"]: p for p in (await client.get("/api/plans")).json()}
    assert public[plan_id]["prices"] == []

    unlinked = await client.patch(url, json={"stripe_price_id": None, "amount_cents": 100})
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["stripe_price_id"] is None
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity == "price", AuditEntry.entity_id == price["id"])
                .order_by(AuditEntry.id)
            )
        ).all()
    assert list(actions) == ["create", "update", "update", "update", "update", "update"]


async def test_a_stripe_price_links_to_one_price_and_bad_patches_are_refused(
    client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Linking a Stripe price already linked elsewhere is 409; a price of another plan is 404;
    a malformed Stripe id or an unknown field is 400; nothing changes."""
    plan_a, price_a = await _plan_with_price(client)
    plan_b, price_b = await _plan_with_price(client)
    stripe_id = f"price_{uuid.uuid4().hex[:12]}"
    url_a = f"/api/provider/plans/{plan_a}/prices/{price_a['id']}"
    assert (await client.patch(url_a, json={"stripe_price_id": stripe_id})).status_code == 200
    url_b = f"/api/provider/plans/{plan_b}/prices/{price_b['id']}"
    taken = await client.patch(url_b, json={"stripe_price_id": stripe_id})
    assert taken.status_code == 409
    wrong_plan = await client.patch(f"/api/provider/plans/{plan_b}/prices/{price_a['id']}", json={})
    assert wrong_plan.status_code == 404
    for body in ({"stripe_price_id": "prod_123"}, {"amount_cents": 1, "colour": "red"}):
        assert (await client.patch(url_b, json=body)).status_code == 400
    async with sessions() as session:
        row = await session.get(Price, uuid.UUID(price_b["id"]))
    assert row is not None
    assert (row.stripe_price_id, row.amount_cents) == (None, 4900)


@pytest.mark.parametrize("who", ["anonymous", "owner", "accountant"])
async def test_only_the_provider_can_change_a_price(
    client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession], who: str
) -> None:
    """Anonymous is 401, an owner or accountant with a valid CSRF token 403, over the API
    and the console's forms; the price is unchanged."""
    plan_id, price = await _plan_with_price(client)
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    token = ""
    if who == "owner":
        account = await create_owner(client.app, "Attacker Org")
        token = await login(client, account.email, account.password)
    elif who == "accountant":
        token = await login_staff(client, who)
    api = await client.patch(
        f"/api/provider/plans/{plan_id}/prices/{price['id']}",
        json={"stripe_price_id": "price_attacker"},
        headers={"X-CSRF-Token": token},
    )
    assert api.status_code == (401 if who == "anonymous" else 403)
    form = await client.post(
        f"/provider/prices/{price['id']}/stripe",
        data={"_csrf": token, "stripe_price_id": "price_attacker"},
        follow_redirects=False,
    )
    if who == "anonymous":
        assert form.status_code in (302, 303)
        assert form.headers["location"].startswith("/login")
    else:
        assert form.status_code == 403
    async with sessions() as session:
        row = await session.get(Price, uuid.UUID(price["id"]))
    assert row is not None
    assert row.stripe_price_id is None


async def test_price_changes_need_csrf_proof(
    client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The provider's session without the CSRF token, or from another origin, changes
    nothing: 403 over the API and on the console's form."""
    plan_id, price = await _plan_with_price(client)
    token = client.headers.pop("X-CSRF-Token")
    url = f"/api/provider/plans/{plan_id}/prices/{price['id']}"
    assert (await client.patch(url, json={"active": False})).status_code == 403
    forged = await client.patch(
        url,
        json={"active": False},
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    for data in ({"stripe_price_id": "price_x"}, {"_csrf": "f" * 64, "stripe_price_id": "price_x"}):
        form = await client.post(
            f"/provider/prices/{price['id']}/stripe", data=data, follow_redirects=False
        )
        assert form.status_code == 403
    async with sessions() as session:
        row = await session.get(Price, uuid.UUID(price["id"]))
    assert row is not None
    assert (row.active, row.stripe_price_id) == (True, None)


async def test_link_form_links_and_redirects_with_a_notice(
    client: AsyncTestClient[Litestar],
) -> None:
    """The console's link form: 303 to the plans page, which shows the notice and the id."""
    _, price = await _plan_with_price(client)
    token = client.headers.pop("X-CSRF-Token")
    stripe_id = f"price_{uuid.uuid4().hex[:12]}"
    answer = await client.post(
        f"/provider/prices/{price['id']}/stripe",
        data={"_csrf": token, "_form_key": uuid.uuid4().hex, "stripe_price_id": stripe_id},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/provider/plans"
    page = await client.get("/provider/plans")
    assert f"Price linked to Stripe price {stripe_id}." in page.text
