"""The Stripe client: one `StripeClient` per app, API version pinned, errors translated.

Every Stripe call goes through `stripe_call`, so an SDK error never leaves this package:
it becomes `UpstreamError` (502 problem+json) with Stripe's request id for support.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import stripe
import structlog
from litestar.datastructures import State

from cortiware.app_state import SETTINGS, StateKey
from cortiware.errors import UpstreamError
from cortiware.settings import Settings

__all__ = [
    "STRIPE_API_VERSION",
    "STRIPE_CLIENT",
    "STRIPE_STATE_KEY",
    "make_stripe_client",
    "provide_stripe",
    "request_key",
    "stripe_call",
    "stripe_get",
]

# Pinned: the webhook endpoint is created with this version too, so event payloads and API
# responses have one shape. It is the version stripe 16.x is typed against; the period
# fields live on subscription items (moved there in 2025-03-31.basil). Bump deliberately.
STRIPE_API_VERSION: Final = "2026-10-28.endive"
STRIPE_CLIENT: Final = StateKey("stripe_client", stripe.StripeClient)
"""`app.state` entry of the app's `StripeClient`, made on first use (tests set a fake one)."""
STRIPE_STATE_KEY: Final = STRIPE_CLIENT.name
"""The name of `STRIPE_CLIENT`."""
_NETWORK_RETRIES: Final = 2
_TIMEOUT_SECONDS: Final = 20.0
log = structlog.get_logger("cortiware.billing")


def make_stripe_client(
    settings: Settings, *, http_client: stripe.HTTPClient | None = None
) -> stripe.StripeClient:
    """A `StripeClient` for `settings` (tests pass a fake `http_client`)."""
    return stripe.StripeClient(
        settings.stripe_secret_key,
        stripe_version=STRIPE_API_VERSION,
        max_network_retries=_NETWORK_RETRIES,
        http_client=http_client
        or stripe.HTTPXClient(timeout=_TIMEOUT_SECONDS, allow_sync_methods=True),
    )


async def provide_stripe(state: State) -> stripe.StripeClient:
    """DI provider: the app's `StripeClient`, built on first use from the settings."""
    client = STRIPE_CLIENT.find(state)
    if client is None:
        client = make_stripe_client(SETTINGS.get(state))
        STRIPE_CLIENT.set(state, client)
    return client


@asynccontextmanager
async def stripe_call(action: str) -> AsyncIterator[None]:
    """Translate any Stripe SDK error raised inside into `UpstreamError` (502).

    Raises:
        UpstreamError: Stripe answered with an error or could not be reached.
    """
    try:
        yield
    except stripe.StripeError as exc:
        log.warning(
            "stripe_error",
            action=action,
            error_type=type(exc).__name__,
            http_status=exc.http_status,
            code=exc.code,
            stripe_request_id=exc.request_id,
        )
        detail = f"Stripe could not {action}."
        if exc.request_id:
            detail += f" Stripe request id: {exc.request_id}."
        raise UpstreamError(detail) from exc


def request_key(purpose: str, params: Mapping[str, Any]) -> str:
    """An idempotency key derived from the whole request.

    Stripe answers 400 when a key is reused with other parameters, so a changed request
    (other events, features, a renamed customer) gets its own key, while a repeated identical
    request (a retry after a lost answer or a rolled-back transaction, a concurrent first use)
    is still deduplicated by Stripe.
    """
    body = json.dumps([purpose, params], sort_keys=True)
    return f"cortiware-{purpose}-{hashlib.sha256(body.encode()).hexdigest()[:32]}"


def stripe_get(obj: Any, key: str, default: Any = None) -> Any:
    """`obj[key]` for a StripeObject or dict, `default` when missing."""
    try:
        value = obj[key]
    except (KeyError, TypeError, AttributeError):
        return default
    return default if value is None else value
