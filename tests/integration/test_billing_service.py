"""`BillingService` called directly on PostgreSQL, with Stripe through the fake transport."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.auth import Principal, Role
from cortiware.billing.customers import ensure_customer
from cortiware.billing.service import BillingService, CheckoutRequest
from cortiware.db.models import Organization, Plan, Price
from cortiware.db.session import transaction
from cortiware.errors import Forbidden, Unprocessable
from cortiware.settings import Settings
from tests.support.stripe_fake import FakeStripe, create_organization, fake_client

Sessions = async_sessionmaker[AsyncSession]


def _billing(
    session: AsyncSession,
    settings: Settings,
    fake: FakeStripe,
    configuration: str | None = None,
    payment_methods: tuple[str, ...] = ("card",),
) -> BillingService:
    async def portal_configuration() -> str | None:
        return configuration

    return BillingService(
        session=session,
        stripe=fake_client(settings, fake),
        base_url=settings.base_url,
        portal_configuration=portal_configuration,
        payment_methods=payment_methods,
    )


async def test_portal_makes_the_customer_once_and_reuses_the_callers_key(
    sessions: Sessions, pg_settings: Settings
) -> None:
    """The first portal session creates and stores the customer; a retry with the same
    client key reaches Stripe with the same idempotency key."""
    org_id = await create_organization(sessions, name=f"Billing {uuid.uuid4().hex[:6]}")
    owner = Principal(role=Role.OWNER, username="o@example.com", organization_id=org_id)
    fake = FakeStripe()
    urls = []
    for _ in range(2):
        async with transaction(sessions) as session:
            result = await _billing(session, pg_settings, fake, "bpc_1").portal(
                owner, client_key="k-1"
            )
        urls.append(result.url)
    assert all(url.startswith("https://") for url in urls)
    assert len(fake.calls("POST", "/v1/customers")) == 1
    portals = fake.calls("POST", "/v1/billing_portal/sessions")
    assert [p.params.get("configuration") for p in portals] == ["bpc_1", "bpc_1"]
    assert portals[0].headers["Idempotency-Key"] == portals[1].headers["Idempotency-Key"]
    async with sessions() as session:
        stored = await session.scalar(
            select(Organization.stripe_customer_id).where(Organization.id == org_id)
        )
    assert stored is not None
    assert stored.startswith("cus_")


async def test_no_organization_and_unknown_price_are_refused(
    sessions: Sessions, pg_settings: Settings
) -> None:
    """An owner session without an organization is Forbidden (403); checkout of a price
    that is not ours is Unprocessable (422), and Stripe is never called."""
    fake = FakeStripe()
    stray = Principal(role=Role.OWNER, username="stray@example.com")
    org_id = await create_organization(sessions)
    owner = Principal(role=Role.OWNER, username="o@example.com", organization_id=org_id)
    async with sessions() as session:
        with pytest.raises(Forbidden):
            await _billing(session, pg_settings, fake).portal(stray)
        with pytest.raises(Unprocessable):
            await _billing(session, pg_settings, fake).checkout(
                owner, CheckoutRequest(price_id="price_not_ours")
            )
    assert fake.requests == []


async def test_checkout_offers_the_configured_methods_the_currency_allows(
    sessions: Sessions, pg_settings: Settings
) -> None:
    """With card, ACH and SEPA configured, a usd price offers card and us_bank_account, a eur
    price card and sepa_debit, a gbp price card only."""
    org_id = await create_organization(sessions)
    owner = Principal(role=Role.OWNER, username="o@example.com", organization_id=org_id)
    tag = uuid.uuid4().hex[:8]
    async with transaction(sessions) as session:
        plan = Plan(code=f"pm-{tag}", name="Methods")
        session.add(plan)
        await session.flush()
        for currency in ("usd", "eur", "gbp"):
            session.add(
                Price(
                    plan_id=plan.id,
                    amount_cents=1000,
                    currency=currency,
                    stripe_price_id=f"price_{tag}_{currency}",
                )
            )
    fake = FakeStripe()
    configured = ("card", "us_bank_account", "sepa_debit")
    for currency in ("usd", "eur", "gbp"):
        async with transaction(sessions) as session:
            await _billing(session, pg_settings, fake, payment_methods=configured).checkout(
                owner, CheckoutRequest(price_id=f"price_{tag}_{currency}")
            )
    offered = [
        call.params["allowed_payment_method_types"]
        for call in fake.calls("POST", "/v1/checkout/sessions")
    ]
    assert offered == [["card", "us_bank_account"], ["card", "sepa_debit"], ["card"]]


async def test_a_customer_lost_to_a_rollback_is_made_again_after_a_rename(
    sessions: Sessions, pg_settings: Settings
) -> None:
    """When the transaction that would have stored the customer id rolls back, a retry with
    the same details gets the same Stripe customer, and a retry after the organization was
    renamed creates one under a new idempotency key instead of Stripe's 400 for a reused key."""
    org_id = await create_organization(sessions, name=f"Before {uuid.uuid4().hex[:6]}")
    owner = Principal(role=Role.OWNER, username="o@example.com", organization_id=org_id)
    fake = FakeStripe()
    client = fake_client(pg_settings, fake)

    async def first_use_rolled_back() -> str:
        # As when Stripe fails after the customer was made: the caller's transaction rolls back.
        async with sessions() as session:
            customer = await ensure_customer(session, client, org_id, owner.owner_id)
            await session.rollback()
        return customer

    first = await first_use_rolled_back()
    assert await first_use_rolled_back() == first  # same details: same key, same customer
    async with sessions() as session, session.begin():
        await session.execute(
            update(Organization).where(Organization.id == org_id).values(name="After Rename")
        )
    async with transaction(sessions) as session:
        renamed = await _billing(session, pg_settings, fake).portal(owner)
    assert renamed.url.startswith("https://")
    created = fake.calls("POST", "/v1/customers")
    assert [c.params["name"] for c in created][-1] == "After Rename"
    assert created[0].idempotency_key != created[-1].idempotency_key
