"""Sentry events carry the release (APP_VERSION), the environment and the caller's id and
role, never an e-mail: checked through the real SDK against a local collector."""

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
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.app import _init_sentry
from cortiware.auth.principal import PRINCIPAL_SCOPE_KEY, Principal, Role
from cortiware.middleware.request_context import RequestContextMiddleware
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
    sentry_sdk.init()  # no DSN: later tests run without Sentry


class _SignedIn(ASGIMiddleware):
    """Stands for the session middleware: puts the owner principal into the scope."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope[PRINCIPAL_SCOPE_KEY] = OWNER  # type: ignore[literal-required]
        await next_app(scope, receive, send)


@get("/api/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("boom")


def _events() -> list[dict[str, Any]]:
    events = []
    for envelope in _Collector.envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_error_event_carries_release_environment_and_user_without_email(
    collector: str, make_settings: SettingsFactory
) -> None:
    """A 500 under a signed-in owner reaches the collector with release cortiware@<APP_VERSION>,
    the environment, and user {id: owner id, role: owner}; the e-mail appears nowhere."""
    settings = make_settings(
        SENTRY_DSN=collector, APP_VERSION="2026.12.06-abc1234", SENTRY_TRACES_SAMPLE_RATE="0"
    )
    _init_sentry(settings)
    app = Litestar([boom], middleware=[RequestContextMiddleware(), _SignedIn()])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/boom").status_code == 500
    sentry_sdk.flush(timeout=5)
    (event,) = _events()
    assert event["release"] == "cortiware@2026.12.06-abc1234"
    assert event["environment"] == settings.app_env.value
    assert event["user"] == {"id": str(OWNER.owner_id), "role": "owner"}
    raw = b"".join(_Collector.envelopes)
    assert b"owner@example.com" not in raw


_PROCESSORS_SEEN: list[int] = []


@get("/api/boom-counting", sync_to_thread=False)
def boom_counting() -> None:
    # Private to the SDK, read here only: how many processors this request's scope holds.
    _PROCESSORS_SEEN.append(len(sentry_sdk.get_isolation_scope()._event_processors))
    raise RuntimeError("boom")


def test_around_routing_each_request_has_its_own_user_processor(
    collector: str, make_settings: SettingsFactory
) -> None:
    """As the service runs it (around routing, before Sentry's route-level middleware makes
    a request's isolation scope), every event still names its user, and the user processor
    stays in its request's scope: the count seen by the handler does not grow."""
    _init_sentry(make_settings(SENTRY_DSN=collector, SENTRY_TRACES_SAMPLE_RATE="0"))
    _PROCESSORS_SEEN.clear()
    app = Litestar([boom_counting], middleware=[_SignedIn()])
    app.asgi_handler = RequestContextMiddleware().around(app.asgi_handler)
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get("/api/boom-counting").status_code == 500
    sentry_sdk.flush(timeout=5)
    events = _events()
    assert [event["user"] for event in events] == [{"id": str(OWNER.owner_id), "role": "owner"}] * 3
    assert len(set(_PROCESSORS_SEEN)) == 1, _PROCESSORS_SEEN
