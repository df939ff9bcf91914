"""Pure parts of subscription sync: the newest-wins order and reading Stripe objects."""

from __future__ import annotations

from datetime import UTC, datetime

from cortiware.webhooks.subscription_sync import (
    EventRef,
    invoice_subscription_id,
    is_newer,
    subscription_values,
)
from tests.support.stripe_fake import invoice_object, subscription_object


def test_newer_by_creation_time_then_by_event_id() -> None:
    """Later events win; in the same second the larger id wins; nothing applied yet: any wins."""
    event = EventRef(id="evt_b", type="customer.subscription.updated", created=100)
    assert is_newer(event, None, None)
    assert is_newer(event, 99, "evt_z")
    assert not is_newer(event, 101, "evt_a")
    assert is_newer(event, 100, "evt_a")
    assert not is_newer(event, 100, "evt_c")
    assert not is_newer(event, 100, "evt_b")  # the same event again changes nothing


def test_period_is_read_from_the_subscription_items() -> None:
    """API 2025-03-31+: current_period_* come from the first item, price from its price."""
    obj = subscription_object(
        "sub_1", price="price_x", amount=700, period_start=1_000, period_end=2_000
    )
    values = subscription_values(obj)
    assert values["current_period_start"] == datetime.fromtimestamp(1_000, UTC)
    assert values["current_period_end"] == datetime.fromtimestamp(2_000, UTC)
    assert (values["stripe_price_id"], values["amount_cents"], values["interval"]) == (
        "price_x",
        700,
        "month",
    )


def test_top_level_period_is_a_fallback_for_older_payloads() -> None:
    """A pre-2025-03-31 payload with the period on the subscription still syncs."""
    obj = {"id": "sub_1", "status": "active", "current_period_end": 3_000, "items": {"data": []}}
    assert subscription_values(obj)["current_period_end"] == datetime.fromtimestamp(3_000, UTC)


def test_invoice_subscription_from_parent_or_legacy_field() -> None:
    """The invoice's subscription is read from parent.subscription_details, else `subscription`."""
    assert invoice_subscription_id(invoice_object("sub_new")) == "sub_new"
    assert invoice_subscription_id({"subscription": "sub_old"}) == "sub_old"
    assert invoice_subscription_id(invoice_object(None)) is None
