"""The organization's Stripe customer: created on first use, then remembered."""

from __future__ import annotations

import uuid

import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params import CustomerCreateParams

from cortiware.billing.client import request_key, stripe_call
from cortiware.db.models import Organization, Owner
from cortiware.errors import NotFound

__all__ = ["ensure_customer"]


async def ensure_customer(
    session: AsyncSession,
    client: stripe.StripeClient,
    organization_id: uuid.UUID,
    owner_id: uuid.UUID | None = None,
) -> str:
    """The Stripe customer id of the organization, creating the customer the first time.

    The create call's idempotency key is derived from the whole request (organization,
    name, e-mail), so two concurrent first uses, or a retry after a lost answer or a
    rolled-back transaction, get the same customer from Stripe; after a rename (or another
    owner's first use) the request differs and so does the key, as Stripe requires.

    Raises:
        NotFound: no such organization.
        UpstreamError: Stripe failed.
    """
    org = (
        await session.execute(
            select(Organization.name, Organization.stripe_customer_id).where(
                Organization.id == organization_id
            )
        )
    ).one_or_none()
    if org is None:
        raise NotFound("No such organization.")
    if org.stripe_customer_id:
        return str(org.stripe_customer_id)
    email = None
    if owner_id is not None:
        email = await session.scalar(select(Owner.email).where(Owner.id == owner_id))
    params: CustomerCreateParams = {
        "name": org.name,
        "metadata": {"organization_id": str(organization_id)},
    }
    if email:
        params["email"] = email
    async with stripe_call("create the customer"):
        customer = await client.v1.customers.create_async(
            params, {"idempotency_key": request_key("customer", params)}
        )
    # Remember it unless a concurrent first use already did (same customer, same key).
    await session.execute(
        update(Organization)
        .where(Organization.id == organization_id, Organization.stripe_customer_id.is_(None))
        .values(stripe_customer_id=customer.id)
    )
    stored = await session.scalar(
        select(Organization.stripe_customer_id).where(Organization.id == organization_id)
    )
    return str(stored or customer.id)
