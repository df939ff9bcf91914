"""`cortiware stripe setup`: the webhook endpoint and Billing Portal configuration, idempotent.

Both objects are found again by what identifies them (the endpoint by its URL, the portal
configuration by `metadata.managed_by`), so a second run updates instead of duplicating.
The endpoint's signing secret is returned by Stripe only when the endpoint is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, cast

import stripe
from stripe.params import WebhookEndpointCreateParams, WebhookEndpointUpdateParams
from stripe.params.billing_portal import ConfigurationCreateParams, ConfigurationUpdateParams

from cortiware.billing.client import STRIPE_API_VERSION, request_key, stripe_call, stripe_get
from cortiware.settings import Settings
from cortiware.webhooks.stripe_events import HANDLED_EVENT_TYPES

__all__ = [
    "MANAGED_BY",
    "SetupReport",
    "portal_configuration_id",
    "portal_features",
    "setup_stripe",
    "webhook_url",
]

MANAGED_BY: Final = "cortiware"
WEBHOOK_PATH: Final = "/api/webhooks/stripe"


@dataclass
class SetupReport:
    """What `setup_stripe` did; `signing_secret` is set only when the endpoint was created."""

    endpoint_id: str = ""
    endpoint_action: str = ""
    portal_configuration_id: str = ""
    portal_action: str = ""
    signing_secret: str | None = field(default=None, repr=False)


def webhook_url(settings: Settings) -> str:
    """Where Stripe delivers events for this stack."""
    return settings.base_url.rstrip("/") + WEBHOOK_PATH


def portal_features() -> dict[str, Any]:
    """What owners may do in the Billing Portal (plan changes go through Checkout)."""
    return {
        "customer_update": {"enabled": True, "allowed_updates": ["email", "address", "name"]},
        "invoice_history": {"enabled": True},
        "payment_method_update": {"enabled": True},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
    }


async def setup_stripe(client: stripe.StripeClient, settings: Settings) -> SetupReport:
    """Create or update the webhook endpoint and the portal configuration.

    Raises:
        UpstreamError: Stripe failed.
    """
    report = SetupReport()
    await _webhook_endpoint(client, settings, report)
    await _portal_configuration(client, settings, report)
    return report


async def _webhook_endpoint(
    client: stripe.StripeClient, settings: Settings, report: SetupReport
) -> None:
    url = webhook_url(settings)
    wanted = sorted(HANDLED_EVENT_TYPES)
    existing = None
    async with stripe_call("list webhook endpoints"):
        endpoints = await client.v1.webhook_endpoints.list_async({"limit": 100})
        async for endpoint in endpoints.auto_paging_iter():
            if endpoint.url == url:
                existing = endpoint
                break
    if existing is None:
        # The stubs type event names and versions as Literal unions; ours are plain str.
        params = cast(
            "WebhookEndpointCreateParams",
            {
                "url": url,
                "enabled_events": wanted,
                "api_version": STRIPE_API_VERSION,
                "description": "Cortiware subscription sync",
                "metadata": {"managed_by": MANAGED_BY},
            },
        )
        async with stripe_call("create the webhook endpoint"):
            created = await client.v1.webhook_endpoints.create_async(
                params, {"idempotency_key": request_key("setup-webhook-endpoint", params)}
            )
        report.endpoint_id, report.endpoint_action = created.id, "created"
        report.signing_secret = stripe_get(created, "secret")
        return
    report.endpoint_id = existing.id
    current = sorted(stripe_get(existing, "enabled_events", []))
    if current == wanted and stripe_get(existing, "status") == "enabled":
        report.endpoint_action = "unchanged"
        return
    async with stripe_call("update the webhook endpoint"):
        await client.v1.webhook_endpoints.update_async(
            existing.id,
            cast("WebhookEndpointUpdateParams", {"enabled_events": wanted, "disabled": False}),
        )
    report.endpoint_action = "updated"


def _portal_matches(configuration: Any, settings: Settings) -> bool:
    features = stripe_get(configuration, "features", {})
    for name, wanted in portal_features().items():
        current = stripe_get(features, name, {})
        for key, value in wanted.items():
            found = stripe_get(current, key)
            if isinstance(value, list) and sorted(found or []) == sorted(value):
                continue
            if found != value:
                return False
    return bool(
        stripe_get(configuration, "default_return_url") == f"{settings.base_url}/owner"
        and stripe_get(configuration, "active")
    )


async def portal_configuration_id(client: stripe.StripeClient) -> str | None:
    """The id of the active portal configuration `stripe setup` manages, if any."""
    async with stripe_call("list billing portal configurations"):
        configurations = await client.v1.billing_portal.configurations.list_async({"limit": 100})
        async for configuration in configurations.auto_paging_iter():
            metadata = stripe_get(configuration, "metadata", {})
            if stripe_get(metadata, "managed_by") == MANAGED_BY and stripe_get(
                configuration, "active"
            ):
                return str(configuration.id)
    return None


async def _portal_configuration(
    client: stripe.StripeClient, settings: Settings, report: SetupReport
) -> None:
    params = cast(
        "ConfigurationCreateParams",
        {
            "features": portal_features(),
            "default_return_url": f"{settings.base_url}/owner",
            "metadata": {"managed_by": MANAGED_BY},
            "name": "Cortiware",
        },
    )
    found = await portal_configuration_id(client)
    if found is None:
        async with stripe_call("create the billing portal configuration"):
            created = await client.v1.billing_portal.configurations.create_async(
                params, {"idempotency_key": request_key("setup-portal-configuration", params)}
            )
        report.portal_configuration_id, report.portal_action = created.id, "created"
        return
    report.portal_configuration_id = found
    async with stripe_call("read the billing portal configuration"):
        current = await client.v1.billing_portal.configurations.retrieve_async(found)
    if _portal_matches(current, settings):
        report.portal_action = "unchanged"
        return
    async with stripe_call("update the billing portal configuration"):
        await client.v1.billing_portal.configurations.update_async(
            found,
            cast(
                "ConfigurationUpdateParams",
                {
                    "features": portal_features(),
                    "default_return_url": f"{settings.base_url}/owner",
                    "active": True,
                },
            ),
        )
    report.portal_action = "updated"
