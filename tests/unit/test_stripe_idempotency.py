"""Stripe idempotency keys: the fake refuses a key reused with other parameters, as Stripe
does, and `cortiware stripe setup` never reuses one that way."""

from __future__ import annotations

import pytest
import stripe

from cortiware.billing import setup as billing_setup
from cortiware.billing.setup import setup_stripe
from tests.conftest import SettingsFactory
from tests.support.stripe_fake import FakeStripe, fake_client


async def test_fake_refuses_a_key_reused_with_other_parameters(
    make_settings: SettingsFactory,
) -> None:
    """Same key and parameters replay the first answer; other parameters get 400."""
    client = fake_client(make_settings(), FakeStripe())
    options: stripe.RequestOptions = {"idempotency_key": "k-1"}
    first = await client.v1.customers.create_async({"name": "A"}, options)
    again = await client.v1.customers.create_async({"name": "A"}, options)
    assert again.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async({"name": "B"}, options)


async def test_setup_after_the_events_changed_creates_with_a_new_key(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-created endpoint whose `enabled_events` changed is sent under a different key."""
    settings = make_settings()
    fake = FakeStripe()
    client = fake_client(settings, fake)
    await setup_stripe(client, settings)
    fake.webhook_endpoints.clear()  # deleted in the dashboard
    more = (*billing_setup.HANDLED_EVENT_TYPES, "charge.refunded")
    monkeypatch.setattr(billing_setup, "HANDLED_EVENT_TYPES", more)
    report = await setup_stripe(client, settings)
    assert report.endpoint_action == "created"
    first, second = fake.calls("POST", "/v1/webhook_endpoints")
    assert first.idempotency_key != second.idempotency_key
    assert "charge.refunded" in second.params["enabled_events"]


async def test_setup_after_the_portal_changed_creates_with_a_new_key(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-created portal configuration with other features is sent under a different key."""
    settings = make_settings()
    fake = FakeStripe()
    client = fake_client(settings, fake)
    await setup_stripe(client, settings)
    fake.portal_configurations.clear()
    features = billing_setup.portal_features()
    monkeypatch.setattr(
        billing_setup,
        "portal_features",
        lambda: {**features, "invoice_history": {"enabled": False}},
    )
    report = await setup_stripe(client, settings)
    assert report.portal_action == "created"
