"""Sentry events carry the release (APP_VERSION), the environment and the caller's id and
role, never an e-mail; transactions are sent; Sentry never changes an answer (a malformed
JSON body stays a 400): checked through the real SDK and the real app against a local
collector."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import brotli  # type: ignore[import-untyped]  # the SDK's own compression
import pytest
import sentry_sdk
from litestar import Litestar, get
from litestar.middleware import ASGIMiddleware
from litestar.params import FromPath
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from sentry_sdk.integrations.litestar import LitestarIntegration

from cortiware.app import create_app
from cortiware.auth.principal import PRINCIPAL_SCOPE_KEY, Principal, Role
from tests.conftest import SettingsFactory

OWNER = Principal(Role.OWNER, "owner@example.com", uuid.uuid4(), uuid.uuid4())


class _Collector(http.server.BaseHTTPRequestHandler):
    """Keeps every envelope posted to it, as Sentry's ingest would receive it."""

    envelopes: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            body = brotli.decompress(body)
        self.envelopes.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def collector() -> Iterator[str]:
    """A local Sentry ingest endpoint; yields its DSN."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.envelopes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://public@127.0.0.1:{server.server_address[1]}/1"
    server.shutdown()
    server.server_close()
    sentry_sdk.get_client().close()
    # No DSN: later tests run without Sentry. Its Litestar integration stays off (were it
    # ever set up, its patch of every route would parse bodies again in later tests).
    sentry_sdk.init(disabled_integrations=[LitestarIntegration()])


class _SignedIn(ASGIMiddleware):
    """Stands for the session middleware: puts the owner principal into the scope."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope[PRINCIPAL_SCOPE_KEY] = OWNER  # type: ignore[literal-required]
        await next_app(scope, receive, send)


@get("/api/_test/boom/{item:int}", middleware=[_SignedIn()], sync_to_thread=False)
def boom(item: FromPath[int]) -> None:
    raise RuntimeError(f"boom {item}")


@get("/api/_test/signed-in", middleware=[_SignedIn()], sync_to_thread=False)
def signed_in() -> dict[str, str]:
    return {}


_PROCESSORS_SEEN: list[int] = []


@get("/api/_test/boom-counting", middleware=[_SignedIn()], sync_to_thread=False)
def boom_counting() -> None:
    # Private to the SDK, read here only: how many processors this request's scope holds.
    _PROCESSORS_SEEN.append(len(sentry_sdk.get_isolation_scope()._event_processors))
    raise RuntimeError("boom")


def _service(collector: str, make_settings: SettingsFactory, **env: str) -> Litestar:
    """The real app with Sentry on (`create_app`), plus the signed-in test routes above."""
    app = create_app(make_settings(SENTRY_DSN=collector, **env))
    for handler in (boom, signed_in, boom_counting):
        app.register(handler)
    return app


def _items(kind: str) -> list[dict[str, Any]]:
    """The payloads of every envelope item of this type (`event`, `transaction`)."""
    items = []
    for envelope in _Collector.envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == kind:
                items.append(json.loads(payload))
    return items


def _events() -> list[dict[str, Any]]:
    return _items("event")


def test_error_event_carries_release_environment_and_user_without_email(
    collector: str, make_settings: SettingsFactory
) -> None:
    """A 500 under a signed-in owner reaches the collector once, with release
    cortiware@<APP_VERSION>, the environment, user {id: owner id, role: owner} and the
    exception; the e-mail appears nowhere."""
    app = _service(
        collector,
        make_settings,
        APP_VERSION="2026.12.06-abc1234",
        SENTRY_TRACES_SAMPLE_RATE="0",
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/_test/boom/7").status_code == 500
    sentry_sdk.flush(timeout=5)
    # One event: the 500 handler's `capture_exception`, not also its log line.
    (event,) = _events()
    assert event["release"] == "cortiware@2026.12.06-abc1234"
    assert event["environment"] == app.state["settings"].app_env.value
    assert event["user"] == {"id": str(OWNER.owner_id), "role": "owner"}
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["request"]["url"].endswith("/api/_test/boom/7")
    raw = b"".join(_Collector.envelopes)
    assert b"owner@example.com" not in raw


def test_malformed_json_body_is_400_with_sentry_on(
    collector: str, make_settings: SettingsFactory
) -> None:
    """With Sentry initialised, a malformed JSON body to a service route is still Litestar's
    400 problem+json (Sentry's Litestar integration, which parsed bodies before the handler
    outside the error handling, made it a 500), and no error event is sent."""
    app = _service(collector, make_settings, SENTRY_TRACES_SAMPLE_RATE="0")
    assert sentry_sdk.get_client().is_active()
    assert sentry_sdk.get_client().get_integration(LitestarIntegration) is None
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/api/onboarding/accept",
            content=b"\x0f@P2",
            headers={"content-type": "application/json", "idempotency-key": uuid.uuid4().hex},
        )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "JSON is malformed" in response.json()["detail"]
    sentry_sdk.flush(timeout=5)
    assert _events() == []


def test_traces_sample_rate_one_sends_transactions_linked_to_errors(
    collector: str, make_settings: SettingsFactory
) -> None:
    """SENTRY_TRACES_SAMPLE_RATE=1: every request is a transaction (named by its route's
    template, not its URL, so ids do not make names; with its status, release and user:
    Sentry's middleware runs inside the request context), and a 500's error event belongs
    to its request's trace and carries the same name."""
    app = _service(
        collector, make_settings, APP_VERSION="2026.12.06-abc1234", SENTRY_TRACES_SAMPLE_RATE="1"
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/_test/signed-in").status_code == 200
        assert client.get("/api/_test/boom/7").status_code == 500
    sentry_sdk.flush(timeout=5)
    transactions = {t["transaction"]: t for t in _items("transaction")}
    assert set(transactions) == {"/api/_test/signed-in", "/api/_test/boom/{item}"}
    ok = transactions["/api/_test/signed-in"]
    assert ok["transaction_info"] == {"source": "route"}
    assert ok["contexts"]["trace"]["op"] == "http.server"
    assert ok["contexts"]["trace"]["status"] == "ok"
    assert ok["release"] == "cortiware@2026.12.06-abc1234"
    assert ok["user"] == {"id": str(OWNER.owner_id), "role": "owner"}
    failed = transactions["/api/_test/boom/{item}"]
    assert failed["contexts"]["trace"]["status"] == "internal_error"
    (event,) = _events()
    assert event["contexts"]["trace"]["trace_id"] == failed["contexts"]["trace"]["trace_id"]
    assert event["transaction"] == "/api/_test/boom/{item}"


def test_around_routing_each_request_has_its_own_user_processor(
    collector: str, make_settings: SettingsFactory
) -> None:
    """As the service runs it (the request context around routing and around Sentry's ASGI
    middleware, whose isolation scope forks the request context's), every event names its
    user, and the user processor stays in its request's scope: the count seen by the handler
    does not grow."""
    _PROCESSORS_SEEN.clear()
    app = _service(collector, make_settings, SENTRY_TRACES_SAMPLE_RATE="0")
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get("/api/_test/boom-counting").status_code == 500
    sentry_sdk.flush(timeout=5)
    events = _events()
    assert [event["user"] for event in events] == [{"id": str(OWNER.owner_id), "role": "owner"}] * 3
    assert len(set(_PROCESSORS_SEEN)) == 1, _PROCESSORS_SEEN
