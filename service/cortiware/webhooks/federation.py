"""Federation events: Standard Webhooks deliveries from sibling stacks, stored once by id.

Handlers register per event `type`; an event with no handler is stored as `ignored` (kept
for diagnostics and later handlers). A duplicate `webhook-id` is answered without running
anything again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware import metrics
from cortiware.webhooks import payload as webhook_payload
from cortiware.webhooks import standard, store
from cortiware.webhooks.store import IncomingEvent

__all__ = [
    "SOURCE",
    "FederationHandler",
    "InvalidDelivery",
    "Verifier",
    "handlers",
    "receive",
]

SOURCE: Final = "federation"
FederationHandler = Callable[[AsyncSession, Mapping[str, Any]], Awaitable[None]]
handlers: dict[str, FederationHandler] = {}
"""Event type → handler; features register theirs at import time."""
log = structlog.get_logger("cortiware.webhooks.federation")


class InvalidDelivery(ValueError):
    """Not an authentic, fresh, well-formed federation delivery (answer 400)."""


class Verifier:
    """The configured secrets, decoded once."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = tuple(standard.decode_secret(secret) for secret in secrets)

    def event(self, headers: Mapping[str, str], body: bytes) -> IncomingEvent:
        """Verify and parse a delivery.

        Raises:
            InvalidDelivery: bad or missing signature, stale timestamp, or a body that is
                not a JSON object.
        """
        try:
            message = standard.verify(self._keys, headers, body)
        except standard.SignatureError as exc:
            raise InvalidDelivery(str(exc)) from None
        try:
            payload, _ = webhook_payload.loads(body)
        except ValueError as exc:
            raise InvalidDelivery(f"body is not JSON PostgreSQL can store: {exc}") from None
        if not isinstance(payload, dict):
            raise InvalidDelivery("body is not a JSON object")
        event_type = payload.get("type")
        if isinstance(event_type, str) and len(event_type) > store.MAX_TYPE_LENGTH:
            raise InvalidDelivery(f"type is longer than {store.MAX_TYPE_LENGTH} characters")
        return IncomingEvent(
            source=SOURCE,
            event_id=message.message_id,
            type=event_type if isinstance(event_type, str) else "unknown",
            payload=payload,
            created=message.timestamp,
        )


async def receive(session: AsyncSession, event: IncomingEvent) -> str:
    """Store and handle one delivery; return its status (`duplicate` when seen before).

    A handler's exception propagates: the caller rolls back and answers 500, so the
    sender retries the same `webhook-id`.
    """
    handler = handlers.get(event.type)
    claimed = await store.claim(session, event, "processed" if handler else "ignored")
    if claimed is None:
        metrics.counter("webhooks.federation.duplicate").inc()
        return "duplicate"
    if handler is not None:
        await handler(session, event.payload)
    metrics.counter(f"webhooks.federation.{claimed.status}").inc()
    log.info("federation_event", event_id=event.event_id, type=event.type, status=claimed.status)
    return claimed.status
