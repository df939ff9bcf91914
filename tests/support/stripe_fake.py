"""Offline Stripe: a fake HTTP transport for `StripeClient` and signed event builders.

`FakeStripe` is a `stripe.HTTPClient`: the SDK builds real requests (form-encoded params,
`Idempotency-Key`, `Stripe-Version`) and the fake records them and answers in the JSON
shapes of Stripe's API reference (customer, billing_portal.session, checkout.session,
webhook_endpoint, billing_portal.configuration, subscription, list, error).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

from cortiware.billing.client import make_stripe_client
from cortiware.settings import Settings

__all__ = [
    "FakeStripe",
    "RecordedRequest",
    "create_organization",
    "event_row",
    "fake_client",
    "invoice_event",
    "invoice_object",
    "signed",
    "subscription_event",
    "subscription_object",
    "subscription_row",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the SDK sent."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        """The `Idempotency-Key` header, if sent."""
        return self.headers.get("Idempotency-Key")


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's bracketed form encoding (`a[b][0]=c`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        parts = raw_key.replace("]", "").split("[")
        node: Any = root
        for part, nxt in itertools.pairwise(parts):
            default: Any = [] if nxt.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(default)
                node = node[index]
            else:
                node = node.setdefault(part, default)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return root


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


@dataclass
class FakeStripe(stripe.HTTPClient):
    """In-memory Stripe for the endpoints the service calls."""

    name = "fake"
    requests: list[RecordedRequest] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    """Queued failures: each request pops one and answers it (status, Stripe error type)."""
    _idempotent: dict[str, tuple[str, tuple[str, int]]] = field(default_factory=dict)
    """Idempotency-Key → (fingerprint of the first request, its answer)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        super().__init__()

    # --- the stripe.HTTPClient interface ----------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        """Answer a synchronous SDK call."""
        body, status = self._handle(method, url, dict(headers or {}), post_data)
        return body, status, {"request-id": f"req_fake{next(self._ids)}"}

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """Answer an asynchronous SDK call."""
        body, status, response_headers = self.request(method, url, headers, post_data)
        return body.encode(), status, response_headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        """No real back-off between the SDK's retries."""
        return asyncio.sleep(0)

    def close(self) -> None:
        """Nothing to close."""

    async def close_async(self) -> None:
        """Nothing to close."""

    # --- helpers for tests ------------------------------------------------------------
    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests to `method path` (path without query)."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def new_id(self, prefix: str) -> str:
        """A fresh object id like Stripe's."""
        return f"{prefix}_{uuid.uuid4().hex[:14]}"

    # --- routing ----------------------------------------------------------------------
    def _handle(
        self, method: str, url: str, headers: dict[str, str], post_data: Any
    ) -> tuple[str, int]:
        parts = urlsplit(url)
        params = decode_form(post_data if method == "post" else parts.query or "")
        self.requests.append(RecordedRequest(method.upper(), parts.path, params, headers))
        if self.errors:
            status, error_type = self.errors.pop(0)
            return json.dumps(
                {"error": {"type": error_type, "message": "Injected failure.", "code": None}}
            ), status
        key = headers.get("Idempotency-Key")
        fingerprint = json.dumps([method.upper(), parts.path, params], sort_keys=True)
        if key and key in self._idempotent:
            first, answer = self._idempotent[key]
            if first != fingerprint:
                # As Stripe: a key replays only the request it was first used with.
                return json.dumps(
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with"
                            " the same parameters they were first used with.",
                        }
                    }
                ), 400
            return answer
        answer = self._route(method.upper(), parts.path, params)
        if key and method == "post":
            self._idempotent[key] = (fingerprint, answer)
        return answer

    def _route(  # noqa: PLR0911 - one return per route reads like a routing table
        self, method: str, path: str, params: dict[str, Any]
    ) -> tuple[str, int]:
        segments = path.strip("/").split("/")[1:]  # drop "v1"
        collections: dict[str, tuple[dict[str, dict[str, Any]], str]] = {
            "customers": (self.customers, "customer"),
            "webhook_endpoints": (self.webhook_endpoints, "webhook_endpoint"),
            "billing_portal/configurations": (self.portal_configurations, "portal_config"),
            "subscriptions": (self.subscriptions, "subscription"),
        }
        if segments[:2] == ["billing_portal", "sessions"] and method == "POST":
            return self._ok(self._portal_session(params))
        if segments[:2] == ["checkout", "sessions"] and method == "POST":
            return self._ok(self._checkout_session(params))
        name = "/".join(segments[:2]) if segments[0] == "billing_portal" else segments[0]
        rest = segments[2:] if segments[0] == "billing_portal" else segments[1:]
        if name not in collections:
            return self._missing(path)
        store, kind = collections[name]
        if not rest and method == "GET":
            return self._ok(self._list(path, store, params))
        if not rest and method == "POST":
            return self._ok(self._create(kind, store, params))
        found = store.get(rest[0])
        if found is None:
            return self._missing(path)
        if method == "POST":
            self._update(kind, found, params)
        return self._ok(self._public(found))

    @staticmethod
    def _ok(obj: Mapping[str, Any]) -> tuple[str, int]:
        return json.dumps(obj), 200

    @staticmethod
    def _missing(path: str) -> tuple[str, int]:
        error = {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such resource: {path}",
        }
        return json.dumps({"error": error}), 404

    @staticmethod
    def _public(obj: Mapping[str, Any]) -> dict[str, Any]:
        # Stripe returns a webhook endpoint's secret only in the create response.
        return {k: v for k, v in obj.items() if k != "secret"}

    def _list(
        self, path: str, store: dict[str, dict[str, Any]], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        items = sorted(store.values(), key=lambda o: (o.get("created", 0), o["id"]))
        limit = int(params.get("limit", 10))
        if "starting_after" in params:
            ids = [o["id"] for o in items]
            items = items[ids.index(params["starting_after"]) + 1 :]
        page = items[:limit]
        return {
            "object": "list",
            "url": path,
            "has_more": len(items) > limit,
            "data": [self._public(o) for o in page],
        }

    def _create(
        self, kind: str, store: dict[str, dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        now = int(time.time())
        if kind == "customer":
            obj = {
                "id": self.new_id("cus"),
                "object": "customer",
                "created": now,
                "email": params.get("email"),
                "name": params.get("name"),
                "metadata": params.get("metadata", {}),
                "livemode": False,
            }
        elif kind == "webhook_endpoint":
            obj = {
                "id": self.new_id("we"),
                "object": "webhook_endpoint",
                "api_version": params.get("api_version"),
                "created": now,
                "description": params.get("description"),
                "enabled_events": params.get("enabled_events", []),
                "livemode": False,
                "metadata": params.get("metadata", {}),
                "secret": "whsec_" + uuid.uuid4().hex,
                "status": "enabled",
                "url": params["url"],
            }
        elif kind == "portal_config":
            obj = {
                "id": self.new_id("bpc"),
                "object": "billing_portal.configuration",
                "active": True,
                "created": now,
                "default_return_url": params.get("default_return_url"),
                "features": _portal_features(params.get("features", {})),
                "is_default": False,
                "livemode": False,
                "metadata": params.get("metadata", {}),
                "name": params.get("name"),
            }
        else:
            raise AssertionError(f"create {kind} is not faked")
        store[obj["id"]] = obj
        return obj

    def _update(self, kind: str, obj: dict[str, Any], params: dict[str, Any]) -> None:
        if kind == "webhook_endpoint":
            if "enabled_events" in params:
                obj["enabled_events"] = params["enabled_events"]
            if "disabled" in params:
                obj["status"] = "disabled" if _bool(params["disabled"]) else "enabled"
        elif kind == "portal_config":
            if "features" in params:
                obj["features"] = _portal_features(params["features"])
            if "default_return_url" in params:
                obj["default_return_url"] = params["default_return_url"]
            if "active" in params:
                obj["active"] = _bool(params["active"])
        else:
            obj.setdefault("metadata", {}).update(params.get("metadata", {}))

    def _portal_session(self, params: Mapping[str, Any]) -> dict[str, Any]:
        session_id = self.new_id("bps")
        return {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": params.get("configuration") or "bpc_default",
            "created": int(time.time()),
            "customer": params["customer"],
            "livemode": False,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{session_id}",
        }

    def _checkout_session(self, params: Mapping[str, Any]) -> dict[str, Any]:
        session_id = self.new_id("cs_test")
        return {
            "id": session_id,
            "object": "checkout.session",
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "customer": params.get("customer"),
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": params.get("mode"),
            "status": "open",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }


def _portal_features(sent: Mapping[str, Any]) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for name, options in sent.items():
        features[name] = {
            k: _bool(v) if v in ("true", "false") else v for k, v in dict(options).items()
        }
    return features


def fake_client(settings: Settings, fake: FakeStripe) -> stripe.StripeClient:
    """The service's own client factory, on the fake transport."""
    return make_stripe_client(settings, http_client=fake)


# --- event payloads ---------------------------------------------------------------------


def subscription_object(
    subscription_id: str,
    *,
    customer: str = "cus_unknown",
    status: str = "active",
    price: str = "price_basic",
    amount: int = 1900,
    period_start: int = 1_767_225_600,
    period_end: int = 1_769_904_000,
    cancel_at_period_end: bool = False,
    organization_id: str | None = None,
) -> dict[str, Any]:
    """A subscription as API 2025-03-31+ sends it: the period on its items."""
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": cancel_at_period_end,
        "trial_end": None,
        "metadata": {"organization_id": organization_id} if organization_id else {},
        "items": {
            "object": "list",
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
            "data": [
                {
                    "id": f"si_{subscription_id[4:]}",
                    "object": "subscription_item",
                    "current_period_start": period_start,
                    "current_period_end": period_end,
                    "quantity": 1,
                    "price": {
                        "id": price,
                        "object": "price",
                        "currency": "usd",
                        "unit_amount": amount,
                        "recurring": {"interval": "month", "interval_count": 1},
                    },
                }
            ],
        },
    }


def invoice_object(
    subscription_id: str | None, *, customer: str = "cus_unknown", paid_at: int | None = None
) -> dict[str, Any]:
    """An invoice (API 2025-03-31+: the subscription under `parent.subscription_details`)."""
    parent = (
        {"type": "subscription_details", "subscription_details": {"subscription": subscription_id}}
        if subscription_id
        else None
    )
    return {
        "id": f"in_{uuid.uuid4().hex[:14]}",
        "object": "invoice",
        "customer": customer,
        "parent": parent,
        "status": "paid" if paid_at else "open",
        "status_transitions": {"paid_at": paid_at},
    }


def _event(event_id: str, event_type: str, created: int, obj: Mapping[str, Any]) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": created,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
    )


def subscription_event(event_id: str, event_type: str, created: int, obj: Mapping[str, Any]) -> str:
    """A `customer.subscription.*` event body."""
    return _event(event_id, event_type, created, obj)


def invoice_event(event_id: str, event_type: str, created: int, obj: Mapping[str, Any]) -> str:
    """An `invoice.*` event body."""
    return _event(event_id, event_type, created, obj)


def signed(payload: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Request headers for `payload` signed with the SDK's own helper."""
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


# --- database helpers for the webhook tests ---------------------------------------------


async def create_organization(
    sessionmaker: Any, *, customer: str | None = None, name: str = "Acme"
) -> uuid.UUID:
    """Insert an organization (optionally with its Stripe customer id); return its id."""
    from cortiware.db.models import Organization

    async with sessionmaker() as db, db.begin():
        org = Organization(name=name, stripe_customer_id=customer)
        db.add(org)
        await db.flush()
        return org.id


async def subscription_row(sessionmaker: Any, stripe_subscription_id: str) -> Any:
    """The `subscriptions` row of a Stripe subscription, or None."""
    from sqlalchemy import select

    from cortiware.db.models import Subscription

    async with sessionmaker() as db:
        return await db.scalar(
            select(Subscription).where(
                Subscription.stripe_subscription_id == stripe_subscription_id
            )
        )


async def event_row(sessionmaker: Any, event_id: str, source: str = "stripe") -> Any:
    """The stored webhook event, or None."""
    from sqlalchemy import select

    from cortiware.db.models import WebhookEvent

    async with sessionmaker() as db:
        return await db.scalar(
            select(WebhookEvent).where(
                WebhookEvent.source == source, WebhookEvent.event_id == event_id
            )
        )
