"""Unit tests of idempotency keys: the in-memory store and the middleware (no Redis)."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import httpx
from litestar import Litestar, Response, post, put
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from litestar.types import Message, Receive, Scope, Send

from cortiware.errors import exception_handlers
from cortiware.idempotency import (
    ClaimOutcome,
    IdempotencyStore,
    MemoryIdempotencyStore,
    StoredResponse,
    fingerprint,
    valid_key,
)
from cortiware.idempotency.middleware import _execute
from cortiware.kv import KV
from cortiware.route_policy import Idempotency, declare
from cortiware.wiring import redis_lifespan, redis_middleware
from tests.conftest import SettingsFactory


def test_memory_store_claim_complete_replay_and_mismatch() -> None:
    """A completed key replays for the same fingerprint and refuses another one."""
    store = MemoryIdempotencyStore()
    first = store.claim("k", "fp1")
    assert first.outcome is ClaimOutcome.ACQUIRED
    assert first.token is not None
    assert store.claim("k", "fp1").outcome is ClaimOutcome.IN_PROGRESS
    assert store.claim("k", "fp2").outcome is ClaimOutcome.MISMATCH
    assert store.complete("k", first.token, StoredResponse(201, [], b"{}"))
    replay = store.claim("k", "fp1")
    assert replay.outcome is ClaimOutcome.COMPLETED
    assert replay.response == StoredResponse(201, [], b"{}")
    assert store.claim("k", "fp2").outcome is ClaimOutcome.MISMATCH


def test_memory_store_release_lets_a_retry_run_and_needs_the_token() -> None:
    """release frees the key only for the claimant's token."""
    store = MemoryIdempotencyStore()
    claim = store.claim("k", "fp")
    assert not store.release("k", "not-the-token")
    assert claim.token is not None
    assert store.release("k", claim.token)
    assert store.claim("k", "fp").outcome is ClaimOutcome.ACQUIRED


def test_memory_store_expired_lease_is_taken_over_and_old_claimant_cannot_complete() -> None:
    """A crashed claim is taken over after its lease; the old token then loses its CAS."""
    store = MemoryIdempotencyStore(lease=0.05)
    old = store.claim("k", "fp")
    time.sleep(0.06)
    new = store.claim("k", "fp")
    assert new.outcome is ClaimOutcome.TAKEN_OVER
    assert old.token is not None
    assert new.token is not None
    assert not store.complete("k", old.token, StoredResponse(200, [], b"old"))
    assert not store.release("k", old.token)
    assert store.complete("k", new.token, StoredResponse(200, [], b"new"))


def test_key_validation_and_fingerprint_are_order_free_in_the_query() -> None:
    """Keys are 1-255 printable ASCII; query parameter order does not change a fingerprint."""
    assert valid_key("a")
    assert valid_key("x" * 255)
    assert not valid_key("")
    assert not valid_key("x" * 256)
    assert not valid_key("tab\there")
    assert not valid_key("é")
    a = fingerprint("POST", "/api/x", b"a=1&b=2", b"{}", "ip:1")
    assert a == fingerprint("POST", "/api/x", b"b=2&a=1", b"{}", "ip:1")
    assert a != fingerprint("POST", "/api/x", b"a=1&b=2", b"{ }", "ip:1")


def _app(make_settings: SettingsFactory) -> tuple[Litestar, list[int]]:
    effects: list[int] = []

    @post("/api/things")
    async def create(data: JSONBody[dict[str, int]]) -> Response[dict[str, int]]:
        await asyncio.sleep(0.05)
        effects.append(data["n"])
        return Response({"n": data["n"], "count": len(effects)}, headers={"Location": "/x"})

    @put("/api/flaky", sync_to_thread=False)
    def flaky() -> dict[str, int]:
        effects.append(-1)
        if len(effects) == 1:
            raise RuntimeError("first attempt fails")
        return {"ok": 1}

    @post(
        "/api/onboarding/accept",
        sync_to_thread=False,
        opt=declare(idempotency=Idempotency.REQUIRED),
    )
    def accept() -> dict[str, str]:
        return {"ok": "yes"}

    settings = make_settings(RATE_LIMIT_DEFAULT="1000/minute")
    app = Litestar(
        route_handlers=[create, flaky, accept],
        middleware=redis_middleware(settings),
        lifespan=[partial(redis_lifespan, settings=settings)],
        exception_handlers=exception_handlers,
    )
    return app, effects


async def test_repeat_replays_stored_response_with_replayed_header(
    make_settings: SettingsFactory,
) -> None:
    """A repeat with the same key and body gets the stored response and Idempotent-Replayed."""
    app, effects = _app(make_settings)
    async with AsyncTestClient(app) as client:
        headers = {"Idempotency-Key": "abc"}
        first = await client.post("/api/things", json={"n": 1}, headers=headers)
        second = await client.post("/api/things", json={"n": 1}, headers=headers)
    assert effects == [1]
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == "/x"
    assert "idempotent-replayed" not in first.headers


async def test_same_key_different_body_is_422_and_concurrent_repeat_is_409(
    make_settings: SettingsFactory,
) -> None:
    """Another payload under a used key is 422; a repeat while the first runs is 409."""
    app, effects = _app(make_settings)
    # httpx's ASGITransport runs the app on this loop, so the two requests really overlap.
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        headers = {"Idempotency-Key": "k1"}
        both = await asyncio.gather(
            *(client.post("/api/things", json={"n": 1}, headers=headers) for _ in range(2))
        )
        busy = next(r for r in both if r.status_code != 201)
        other = await client.post("/api/things", json={"n": 2}, headers=headers)
    assert busy.status_code == 409
    assert int(busy.headers["retry-after"]) >= 1
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert other.status_code == 422
    assert effects == [1]


async def test_a_5xx_releases_the_key_so_the_retry_runs(make_settings: SettingsFactory) -> None:
    """After a 500 the same key runs the handler again."""
    app, effects = _app(make_settings)
    async with AsyncTestClient(app) as client:
        headers = {"Idempotency-Key": "retry-me"}
        failed = await client.put("/api/flaky", headers=headers)
        retried = await client.put("/api/flaky", headers=headers)
    assert failed.status_code == 500
    assert retried.status_code == 200
    assert "idempotent-replayed" not in retried.headers
    assert effects == [-1, -1]


async def test_key_required_on_onboarding_accept_and_validated(
    make_settings: SettingsFactory,
) -> None:
    """POST /api/onboarding/accept without a key, or any bad key, is 400 problem+json."""
    app, _ = _app(make_settings)
    async with AsyncTestClient(app) as client:
        missing = await client.post("/api/onboarding/accept", json={})
        bad = await client.post(
            "/api/things", json={"n": 1}, headers={"Idempotency-Key": "x" * 256}
        )
        fine = await client.post(
            "/api/onboarding/accept", json={}, headers={"Idempotency-Key": "a"}
        )
        optional = await client.post("/api/things", json={"n": 3})
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert bad.status_code == 400
    assert fine.status_code == 201
    assert optional.status_code == 201


async def test_a_5xx_releases_its_key_before_the_client_sees_it() -> None:
    """The key of a request answered 5xx is free when the response starts, so a retry sent
    as soon as the client reads the 503 runs instead of meeting 409 "still being processed"
    (seen under load: 52 x 409 to retries of accepts answered 503)."""
    store = IdempotencyStore(KV(None), secret="idempotency-unit-test-secret-" + "x" * 16)
    claim = await store.claim("key", "fingerprint")
    assert claim.token is not None
    at_start: list[ClaimOutcome] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            at_start.append((await store.claim("key", "fingerprint")).outcome)

    await _execute(
        {"type": "http"}, receive, send, app, store=store, record_key="key", token=claim.token
    )
    assert at_start == [ClaimOutcome.ACQUIRED]
