"""`POST /api/webhooks/stripe` and `POST /api/webhooks/federation`.

Both read the raw body (signatures cover the exact bytes), answer 400 problem+json when
verification fails and 200 once the event is stored. Exempt from CSRF, rate limits and
Idempotency-Key handling and the input guard: each declares `SIGNED_WEBHOOK`
(`cortiware.route_policy`), which those middlewares read.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.auth.routes import settings_of
from cortiware.cache import GROUP_ORGANIZATIONS
from cortiware.cache.read_through import cache_of
from cortiware.db.session import DB_SESSIONMAKER
from cortiware.errors import BadRequest, NotFound, problem_response
from cortiware.route_policy import SIGNED_WEBHOOK, declare
from cortiware.webhooks import federation, stripe_events
from cortiware.webhooks.ingest import INGEST_STATE_KEY, StripeIngest

__all__ = [
    "federation_webhook",
    "provide_federation_verifier",
    "provide_stripe_ingest",
    "stripe_webhook",
]

_FEDERATION_VERIFIER = "federation_verifier"
_CHANGED = frozenset({"processed", "duplicate"})


def provide_stripe_ingest(state: State) -> StripeIngest:
    """DI provider: the app's one `StripeIngest` (made on first use), which drops the cached
    organization views once a batch that changed a subscription has committed."""
    ingest: StripeIngest | None = state.get(INGEST_STATE_KEY)
    if ingest is None:
        cache = cache_of(state)

        async def invalidate(receipts: list[stripe_events.Receipt]) -> None:
            # Subscription status shows in the cached organization views: drop them once
            # the change is committed, on every instance. A duplicate drops them too: Stripe
            # redelivers when it got no answer, and the first delivery may have committed
            # and then died (or lost its reply) before invalidating.
            if cache is not None and any(r.status in _CHANGED for r in receipts):
                await cache.invalidate(GROUP_ORGANIZATIONS)

        ingest = StripeIngest(DB_SESSIONMAKER.get(state), after_commit=invalidate)
        state[INGEST_STATE_KEY] = ingest
    return ingest


def provide_federation_verifier(state: State) -> federation.Verifier | None:
    """DI provider: the app's federation verifier, None while no secret is configured."""
    settings = SETTINGS.get(state)
    if not settings.federation_webhook_secrets:
        return None
    verifier: federation.Verifier | None = state.get(_FEDERATION_VERIFIER)
    if verifier is None:
        verifier = federation.Verifier(settings.federation_webhook_secrets)
        state[_FEDERATION_VERIFIER] = verifier
    return verifier


@post(
    "/api/webhooks/stripe",
    status_code=200,
    tags=["webhooks"],
    include_in_schema=True,
    opt=SIGNED_WEBHOOK
    | declare(
        errors={
            400: "Bad or missing `Stripe-Signature`, stale timestamp, or not a Stripe event.",
            500: "The event could not be processed; it is kept and Stripe retries.",
        },
        request_headers={
            "Stripe-Signature": "`t=<unix time>,v1=<hex HMAC-SHA256>`, checked on the raw body.",
        },
    ),
    dependencies={"ingest": Provide(provide_stripe_ingest, sync_to_thread=False)},
)
async def stripe_webhook(
    request: Request[Any, Any, State], ingest: NamedDependency[StripeIngest]
) -> Response[Any]:
    """Receive a Stripe event: verified, stored once, synced; 500 keeps it for replay.

    Concurrent deliveries are committed together (`cortiware.webhooks.ingest`); each is
    answered once its own event is committed.

    Raises:
        BadRequest: bad or missing signature, stale timestamp, or not a Stripe event.
    """
    settings = settings_of(request)
    body = await request.body()
    try:
        stripe_events.verify_signature(
            body, request.headers.get("stripe-signature"), settings.stripe_webhook_secrets
        )
        event = stripe_events.parse_event(body)
    except stripe_events.InvalidEvent as exc:
        raise BadRequest(f"Invalid Stripe webhook: {exc}") from None
    try:
        receipt = await ingest.submit(event)
    except stripe_events.ProcessingFailed:
        return problem_response(
            500, "The event could not be processed; it is stored and will be retried."
        )
    return Response({"received": True, "id": receipt.event_id, "status": receipt.status})


@post(
    "/api/webhooks/federation",
    status_code=200,
    tags=["webhooks"],
    opt=SIGNED_WEBHOOK
    | declare(
        errors={
            400: "Bad or missing signature headers, stale timestamp, or not JSON.",
            404: "Federation webhooks are not enabled (`FEDERATION_WEBHOOK_SECRETS`).",
        },
        request_headers={
            "webhook-id": "Standard Webhooks message id; a repeated id is answered 200, not rerun.",
            "webhook-timestamp": "Unix seconds; more than 300 s away from now is refused.",
            "webhook-signature": "`v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>`, "
            "several separated by spaces while rotating.",
        },
    ),
    dependencies={"verifier": Provide(provide_federation_verifier, sync_to_thread=False)},
)
async def federation_webhook(
    request: Request[Any, Any, State],
    db_session: NamedDependency[AsyncSession],
    verifier: NamedDependency[federation.Verifier | None],
) -> Response[Any]:
    """Receive a Standard Webhooks federation event; 404 unless secrets are configured.

    Raises:
        NotFound: FEDERATION_WEBHOOK_SECRETS is not set.
        BadRequest: bad or missing signature headers, stale timestamp, or not JSON.
    """
    if verifier is None:
        raise NotFound("Federation webhooks are not enabled.")
    body = await request.body()
    try:
        event = verifier.event(request.headers, body)
    except federation.InvalidDelivery as exc:
        raise BadRequest(f"Invalid federation webhook: {exc}") from None
    status = await federation.receive(db_session, event)
    return Response({"received": True, "id": event.event_id, "status": status})
