"""`POST /api/webhooks/federation` on PostgreSQL: Standard Webhooks signatures, store-once."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app import create_app
from cortiware.webhooks import federation, standard
from tests.conftest import TEST_ENV, SettingsFactory
from tests.support.stripe_fake import event_row

URL = "/api/webhooks/federation"
OLD_KEY, NEW_KEY = b"old-federation-key-0123456789abc", b"new-federation-key-0123456789xyz"


def _secret(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


def _headers(
    body: bytes, key: bytes, *, message_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard.sign(key, message_id, timestamp, body),
        "content-type": "application/json",
    }


@pytest.fixture
async def fed_client(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client for an app configured with two federation secrets (rotation)."""
    settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        FEDERATION_WEBHOOK_SECRETS=f"{_secret(OLD_KEY)},{_secret(NEW_KEY)}",
    )
    async with AsyncTestClient(create_app(settings), base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[Mapping[str, Any]]:
    """Payloads the `test.ping` handler saw."""
    seen: list[Mapping[str, Any]] = []

    async def handler(session: AsyncSession, payload: Mapping[str, Any]) -> None:
        seen.append(payload)

    monkeypatch.setitem(federation.handlers, "test.ping", handler)
    return seen


def _body() -> bytes:
    return json.dumps({"type": "test.ping", "data": {"n": uuid.uuid4().hex}}).encode()


async def test_valid_delivery_is_stored_and_handled(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]], database_url: str
) -> None:
    """A correctly signed delivery answers 200, runs its handler and is stored once."""
    body = _body()
    headers = _headers(body, OLD_KEY)
    response = await fed_client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processed"
    assert len(handled) == 1
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from cortiware.db.engine import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        stored = await event_row(async_sessionmaker(engine), headers["webhook-id"], "federation")
    finally:
        await engine.dispose()
    assert (stored.type, stored.status, stored.attempts) == ("test.ping", "processed", 1)


async def test_tampered_body_is_400(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]]
) -> None:
    """A body changed after signing is refused with 400 and nothing runs."""
    body = _body()
    headers = _headers(body, OLD_KEY)
    response = await fed_client.post(URL, content=body.replace(b"ping", b"pong"), headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert handled == []


async def test_stale_timestamp_is_400(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]]
) -> None:
    """A timestamp more than 300 s old (or ahead) is refused even with a valid signature."""
    body = _body()
    old = await fed_client.post(
        URL, content=body, headers=_headers(body, OLD_KEY, timestamp=int(time.time()) - 301)
    )
    # Well past the window ahead: `int(time.time()) + 301` is back inside it whenever
    # the service reads the clock in the next second.
    ahead_stamp = int(time.time()) + standard.DEFAULT_TOLERANCE_SECONDS + 60
    ahead = await fed_client.post(
        URL, content=body, headers=_headers(body, OLD_KEY, timestamp=ahead_stamp)
    )
    assert (old.status_code, ahead.status_code) == (400, 400)
    assert handled == []


async def test_duplicate_id_is_200_and_not_processed_again(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]]
) -> None:
    """A second delivery with the same webhook-id answers 200 `duplicate` without the handler."""
    body = _body()
    message_id = f"msg_{uuid.uuid4().hex}"
    first = await fed_client.post(
        URL, content=body, headers=_headers(body, OLD_KEY, message_id=message_id)
    )
    again = await fed_client.post(
        URL, content=body, headers=_headers(body, NEW_KEY, message_id=message_id)
    )
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    assert len(handled) == 1


async def test_rotated_secret_is_accepted_and_unknown_rejected(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]]
) -> None:
    """The second configured secret verifies; a key that is not configured does not."""
    body = _body()
    rotated = await fed_client.post(URL, content=body, headers=_headers(body, NEW_KEY))
    unknown = await fed_client.post(
        URL, content=_body(), headers=_headers(body, b"some-other-key-0123456789")
    )
    assert rotated.status_code == 200
    assert unknown.status_code == 400
    assert len(handled) == 1


async def test_endpoint_is_404_without_federation_secrets(
    make_settings: SettingsFactory, database_url: str, redis_url: str
) -> None:
    """Without FEDERATION_WEBHOOK_SECRETS the endpoint does not exist (404)."""
    settings = make_settings(
        DATABASE_URL=database_url, REDIS_URL=redis_url, FEDERATION_WEBHOOK_SECRETS=None
    )
    assert "FEDERATION_WEBHOOK_SECRETS" in TEST_ENV
    async with AsyncTestClient(create_app(settings), base_url="http://testserver.local") as c:
        body = _body()
        response = await c.post(URL, content=body, headers=_headers(body, OLD_KEY))
    assert response.status_code == 404


@pytest.mark.parametrize("timestamp", ["9" * 400, "1" * 5000, "-5", "1e9", " 1"])
async def test_a_malformed_timestamp_is_400_before_any_secret_is_needed(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]], timestamp: str
) -> None:
    """Unauthenticated junk in `webhook-timestamp` (a 400-digit number overflowed the float
    comparison: 500) is a 400 problem."""
    headers = {"webhook-id": "m1", "webhook-timestamp": timestamp, "webhook-signature": "v1,AA"}
    response = await fed_client.post(URL, content=b"{}", headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert handled == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "test.ping", "n": NaN}',
        b'{"type": "test.ping", "n": 1e999}',
        b"[" * 5000,
        b'{"type": "' + b"x" * 200 + b'"}',  # longer than the type column
    ],
)
async def test_signed_json_postgresql_cannot_store_is_400(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]], body: bytes
) -> None:
    response = await fed_client.post(URL, content=body, headers=_headers(body, OLD_KEY))
    assert response.status_code == 400, response.text
    assert handled == []


async def test_a_signed_nul_is_stored_replaced_and_handled(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]], database_url: str
) -> None:
    """`jsonb` cannot hold U+0000: the delivery is kept with U+FFFD in its place (was 500)."""
    body = b'{"type": "test.ping", "data": {"name": "a\\u0000b"}}'
    headers = _headers(body, OLD_KEY)
    response = await fed_client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert handled[0]["data"]["name"] == "a\ufffdb"


async def _raw_post(app: Litestar, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """POST through the ASGI interface with header bytes as a server passes them (the test
    client re-encodes header values, so it cannot send these)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver.local"), *headers],
        "client": ("127.0.0.1", 1234), "server": ("testserver.local", 80),
    }  # fmt: skip
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)  # type: ignore[arg-type]
    return statuses[0]


async def test_a_non_ascii_digit_timestamp_is_400_on_both_webhooks(
    fed_client: AsyncTestClient[Litestar], handled: list[Mapping[str, Any]]
) -> None:
    """Header bytes arrive as latin-1: 0xB2 is "²", which `str.isdigit` accepts and `int`
    refuses (an unauthenticated 500 on either webhook)."""
    federation = [
        (b"webhook-id", b"m1"),
        (b"webhook-timestamp", b"\xb2"),
        (b"webhook-signature", b"v1,AA"),
    ]
    stripe = [(b"stripe-signature", b"t=\xb2,v1=abc")]
    assert await _raw_post(fed_client.app, URL, federation) == 400
    assert await _raw_post(fed_client.app, "/api/webhooks/stripe", stripe) == 400
    assert handled == []


async def test_a_signed_lone_surrogate_is_stored_replaced(
    fed_client: AsyncTestClient[Litestar],
    handled: list[Mapping[str, Any]],
    database_url: str,
) -> None:
    """`jsonb` refuses a lone surrogate (`"\\ud800"`), which `json.loads` accepts: stored with
    U+FFFD instead (it was a 500 and the event was never stored)."""
    body = b'{"type": "test.ping", "data": {"name": "a\\ud800b"}}'
    response = await fed_client.post(URL, content=body, headers=_headers(body, OLD_KEY))
    assert response.status_code == 200, response.text
    assert handled[0]["data"]["name"] == "a\ufffdb"
