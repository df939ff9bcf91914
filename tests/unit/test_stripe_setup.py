"""The Stripe client factory, error translation, and `cortiware stripe setup` on the fake."""

from __future__ import annotations

import pytest
import stripe
from click.testing import CliRunner

from cortiware.billing import cli as billing_cli
from cortiware.billing.cli import parse_since
from cortiware.billing.client import STRIPE_API_VERSION, stripe_call
from cortiware.billing.setup import portal_features, setup_stripe
from cortiware.cli import main
from cortiware.errors import UpstreamError
from cortiware.webhooks.stripe_events import HANDLED_EVENT_TYPES
from tests.conftest import TEST_ENV, SettingsFactory
from tests.support.stripe_fake import FakeStripe, fake_client

FIVE_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
}


def test_api_version_is_pinned_to_the_sdk_version() -> None:
    """The pinned version is the one stripe 16.x is typed against (bump both together)."""
    assert stripe.api_version == STRIPE_API_VERSION


async def test_stripe_errors_become_upstream_errors() -> None:
    """An SDK error inside `stripe_call` surfaces as UpstreamError (502), chained."""
    with pytest.raises(UpstreamError) as caught:
        async with stripe_call("do a thing"):
            raise stripe.APIConnectionError("boom")  # type: ignore[no-untyped-call]  # SDK untyped
    assert caught.value.status_code == 502
    assert isinstance(caught.value.__cause__, stripe.StripeError)


async def test_setup_creates_endpoint_with_exactly_five_events_and_portal(
    make_settings: SettingsFactory,
) -> None:
    """A first run creates the endpoint (pinned version, our URL, five events) and the portal."""
    settings = make_settings()
    fake = FakeStripe()
    report = await setup_stripe(fake_client(settings, fake), settings)
    assert (report.endpoint_action, report.portal_action) == ("created", "created")
    assert report.signing_secret is not None
    assert report.signing_secret.startswith("whsec_")
    (create,) = fake.calls("POST", "/v1/webhook_endpoints")
    assert create.params["url"] == "http://testserver.local/api/webhooks/stripe"
    assert set(create.params["enabled_events"]) == FIVE_EVENTS == set(HANDLED_EVENT_TYPES)
    assert create.params["api_version"] == STRIPE_API_VERSION
    assert create.idempotency_key
    (portal,) = fake.calls("POST", "/v1/billing_portal/configurations")
    assert portal.params["features"]["subscription_cancel"]["mode"] == "at_period_end"
    assert portal.idempotency_key


async def test_setup_is_idempotent_and_shows_the_secret_only_once(
    make_settings: SettingsFactory,
) -> None:
    """A second run changes nothing and has no secret to show."""
    settings = make_settings()
    fake = FakeStripe()
    client = fake_client(settings, fake)
    await setup_stripe(client, settings)
    again = await setup_stripe(client, settings)
    assert (again.endpoint_action, again.portal_action) == ("unchanged", "unchanged")
    assert again.signing_secret is None
    assert len(fake.webhook_endpoints) == len(fake.portal_configurations) == 1


async def test_setup_repairs_an_endpoint_with_other_events(make_settings: SettingsFactory) -> None:
    """An existing endpoint with different or disabled events is updated to exactly five."""
    settings = make_settings()
    fake = FakeStripe()
    client = fake_client(settings, fake)
    await setup_stripe(client, settings)
    (endpoint,) = fake.webhook_endpoints.values()
    endpoint["enabled_events"] = ["charge.succeeded"]
    endpoint["status"] = "disabled"
    report = await setup_stripe(client, settings)
    assert report.endpoint_action == "updated"
    assert set(endpoint["enabled_events"]) == FIVE_EVENTS
    assert endpoint["status"] == "enabled"


def test_setup_command_prints_the_secret_only_on_creation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`cortiware stripe setup` prints the signing secret the first time only."""
    fake = FakeStripe()
    monkeypatch.setattr(
        billing_cli, "make_stripe_client", lambda settings: fake_client(settings, fake)
    )
    env = {**TEST_ENV, "DATABASE_URL": "sqlite:///unused.sqlite3"}
    runner = CliRunner()
    first = runner.invoke(main, ["stripe", "setup"], env=env)
    second = runner.invoke(main, ["stripe", "setup"], env=env)
    assert first.exit_code == 0, first.output
    assert "signing secret" in first.output
    assert "whsec_" in first.output
    assert second.exit_code == 0, second.output
    assert "unchanged" in second.output
    assert "whsec_" not in second.output


def test_setup_command_reports_stripe_failure_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Stripe failure exits non-zero with a readable message, not a traceback."""
    fake = FakeStripe(errors=[(401, "invalid_request_error")])
    monkeypatch.setattr(
        billing_cli, "make_stripe_client", lambda settings: fake_client(settings, fake)
    )
    result = CliRunner().invoke(main, ["stripe", "setup"], env=dict(TEST_ENV))
    assert result.exit_code != 0
    assert "Stripe could not" in result.output
    assert "Traceback" not in result.output


def test_portal_features_let_owners_cancel_at_period_end() -> None:
    """The portal configuration allows invoices, payment methods and cancel at period end."""
    features = portal_features()
    assert features["subscription_cancel"] == {"enabled": True, "mode": "at_period_end"}
    assert features["invoice_history"]["enabled"] is True


def test_parse_since_accepts_durations_and_iso_dates() -> None:
    """`--since` takes 30m/24h/7d or an ISO 8601 time (UTC when no offset)."""
    from datetime import UTC, datetime

    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert parse_since("7d", now=now) == datetime(2026, 1, 3, tzinfo=UTC)
    assert parse_since("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    import click

    with pytest.raises(click.BadParameter):
        parse_since("yesterday")
