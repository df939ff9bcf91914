"""Owner billing on PostgreSQL: Billing Portal and Checkout through the fake Stripe transport."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.billing.client import STRIPE_API_VERSION, STRIPE_STATE_KEY
from cortiware.db.engine import create_engine
from cortiware.db.models import Organization, Plan, Price
from cortiware.settings import Settings
from tests.support.auth import create_owner, login, login_staff
from tests.support.stripe_fake import FakeStripe, fake_client

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the run's database for the test's own reads and writes."""
    engine = create_engine(database_url, pool_size=2)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def stripe_fake(app: Litestar, pg_settings: Settings) -> FakeStripe:
    """The app's Stripe client, on a fake transport that records every request."""
    fake = FakeStripe()
    app.state[STRIPE_STATE_KEY] = fake_client(pg_settings, fake)
    return fake


async def _owner_session(app: Litestar, client: Client) -> tuple[uuid.UUID, dict[str, str]]:
    owner = await create_owner(app)
    token = await login(client, owner.email, owner.password)
    return owner.organization_id, {"X-CSRF-Token": token}


async def test_portal_creates_the_customer_once_and_returns_the_url(
    app: Litestar, client: Client, stripe_fake: FakeStripe, db: async_sessionmaker[AsyncSession]
) -> None:
    """The first portal call creates and stores the customer; the second reuses it."""
    org, headers = await _owner_session(app, client)
    first = await client.post("/api/owner/billing/portal", headers=headers)
    second = await client.post("/api/owner/billing/portal", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["url"].startswith("https://billing.stripe.com/p/session/")
    assert second.status_code == 200
    creates = stripe_fake.calls("POST", "/v1/customers")
    assert len(creates) == 1
    assert creates[0].params["metadata"] == {"organization_id": str(org)}
    assert creates[0].idempotency_key.startswith("cortiware-customer-")  # from the request
    assert creates[0].headers["Stripe-Version"] == STRIPE_API_VERSION
    async with db() as session:
        customer = await session.scalar(
            select(Organization.stripe_customer_id).where(Organization.id == org)
        )
    sessions = stripe_fake.calls("POST", "/v1/billing_portal/sessions")
    assert len(sessions) == 2
    assert {s.params["customer"] for s in sessions} == {customer}
    assert sessions[0].params["return_url"] == "http://testserver.local/owner"
    assert all(s.idempotency_key for s in sessions)


async def test_checkout_starts_a_subscription_for_an_active_price(
    app: Litestar, client: Client, stripe_fake: FakeStripe, db: async_sessionmaker[AsyncSession]
) -> None:
    """Checkout sends mode=subscription, the price and the organization in metadata."""
    org, headers = await _owner_session(app, client)
    stripe_price = f"price_{uuid.uuid4().hex[:10]}"
    async with db() as session, session.begin():
        plan = Plan(code=f"plan-{uuid.uuid4().hex[:8]}", name="Pro")
        session.add(plan)
        await session.flush()
        session.add(Price(plan_id=plan.id, amount_cents=4900, stripe_price_id=stripe_price))
    response = await client.post(
        "/api/owner/billing/checkout", json={"price_id": stripe_price}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["url"].startswith("https://checkout.stripe.com/c/pay/")
    (sent,) = stripe_fake.calls("POST", "/v1/checkout/sessions")
    assert sent.params["mode"] == "subscription"
    assert sent.params["line_items"] == [{"price": stripe_price, "quantity": "1"}]
    assert sent.params["subscription_data"]["metadata"] == {"organization_id": str(org)}
    assert sent.idempotency_key


async def test_checkout_with_an_unknown_price_is_422(
    app: Litestar, client: Client, stripe_fake: FakeStripe
) -> None:
    """A price that is not one of ours is refused before Stripe is called."""
    _, headers = await _owner_session(app, client)
    response = await client.post(
        "/api/owner/billing/checkout", json={"price_id": "price_not_ours"}, headers=headers
    )
    assert response.status_code == 422
    assert stripe_fake.calls("POST", "/v1/checkout/sessions") == []


async def test_checkout_with_an_unknown_field_is_400(
    app: Litestar, client: Client, stripe_fake: FakeStripe
) -> None:
    """Like every body here, an unknown field is a 400 (it was a pydantic model that ignored
    extras and answered 422 for the price instead)."""
    _, headers = await _owner_session(app, client)
    response = await client.post(
        "/api/owner/billing/checkout", json={"price_id": "price_x", "extra": 1}, headers=headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert stripe_fake.calls("POST", "/v1/checkout/sessions") == []


async def test_stripe_failure_is_502_problem_json(
    app: Litestar, client: Client, stripe_fake: FakeStripe, db: async_sessionmaker[AsyncSession]
) -> None:
    """A Stripe error becomes 502 problem+json and no customer id is stored."""
    org, headers = await _owner_session(app, client)
    stripe_fake.errors.append((402, "card_error"))
    response = await client.post("/api/owner/billing/portal", headers=headers)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Injected failure" not in response.text
    async with db() as session:
        stored = await session.scalar(
            select(Organization.stripe_customer_id).where(Organization.id == org)
        )
    assert stored is None


async def test_billing_routes_are_owner_only(client: Client, stripe_fake: FakeStripe) -> None:
    """Anonymous callers get 401 and other roles 403."""
    anonymous = await client.post("/api/owner/billing/portal")
    assert anonymous.status_code in (401, 403)
    token = await login_staff(client, "provider")
    provider = await client.post("/api/owner/billing/portal", headers={"X-CSRF-Token": token})
    assert provider.status_code == 403
    assert stripe_fake.requests == []
