"""Idempotency keys on real Redis: one side effect under 100 concurrent duplicates."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from cortiware import metrics
from cortiware.errors import exception_handlers
from cortiware.idempotency import ClaimOutcome, IdempotencyStore, StoredResponse
from cortiware.idempotency import store as idempotency_store
from cortiware.idempotency.store import LimitCheck
from cortiware.kv import KV, KVConfig
from cortiware.ratelimit import GCRALimiter
from cortiware.wiring import redis_lifespan, redis_middleware
from tests.conftest import SettingsFactory
from tests.integration.conftest import in_loop_client
from tests.support.auth import login_staff
from tests.support.servers import redis_server

SEAL_SECRET = "idempotency-test-secret-" + "x" * 16


def _app(
    make_settings: SettingsFactory, redis_url: str, prefix: str, **env: str
) -> tuple[Litestar, list[int]]:
    effects: list[int] = []

    @post("/api/orders")
    async def create(data: JSONBody[dict[str, int]]) -> dict[str, int]:
        await asyncio.sleep(0.05)
        effects.append(data["n"])
        if data["n"] < 0 and len(effects) == 1:
            raise RuntimeError("first attempt fails")
        return {"n": data["n"]}

    settings = make_settings(
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=prefix,
        RATE_LIMIT_DEFAULT="10000/minute",
        **env,
    )
    app = Litestar(
        route_handlers=[create],
        middleware=redis_middleware(settings),
        lifespan=[partial(redis_lifespan, settings=settings)],
        exception_handlers=exception_handlers,
    )
    return app, effects


async def test_100_concurrent_posts_with_one_key_have_one_side_effect(
    make_settings: SettingsFactory, redis_url: str, redis_prefix: str
) -> None:
    """Of 100 concurrent POSTs with one key one runs; the rest get 409 or the replay."""
    app, effects = _app(make_settings, redis_url, redis_prefix)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://t")
    async with app.lifespan(), client:
        headers = {"Idempotency-Key": "order-1"}
        responses = await asyncio.gather(
            *(client.post("/api/orders", json={"n": 1}, headers=headers) for _ in range(100))
        )
        replay = await client.post("/api/orders", json={"n": 1}, headers=headers)
        other = await client.post("/api/orders", json={"n": 2}, headers=headers)
    assert effects == [1]
    created = [r for r in responses if r.status_code == 201]
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1
    assert all(r.status_code in (201, 409) for r in responses)
    assert all("retry-after" in r.headers for r in responses if r.status_code == 409)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422


async def test_a_claim_redis_stalls_on_waits_for_redis_and_runs_once(
    make_settings: SettingsFactory, redis_prefix: str, tmp_path: Path
) -> None:
    """Redis paused for 0.8 s (`CLIENT PAUSE ALL`, as in the chaos runs) while a keyed POST
    claims its key: the claim times out (in doubt), is asked again with the same token until
    Redis answers, and the request runs once: no 503, no run from memory."""
    with redis_server(tmp_path) as server:
        app, effects = _app(make_settings, server.url, redis_prefix, CORTIWARE_REDIS_TIMEOUT="0.2")
        admin = Redis.from_url(server.url)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with app.lifespan(), client:
            headers = {"Idempotency-Key": "order-paused"}
            await client.post("/api/orders", json={"n": 0}, headers={"Idempotency-Key": "warm"})
            settled_before = metrics.snapshot().get("idempotency.settled", 0)
            await admin.execute_command("CLIENT", "PAUSE", 800, "ALL")
            paused = await client.post("/api/orders", json={"n": 7}, headers=headers)
            await asyncio.sleep(1.5)  # the breaker's probe finds Redis again
            replay = await client.post("/api/orders", json={"n": 7}, headers=headers)
            settled = metrics.snapshot().get("idempotency.settled", 0) - settled_before
        await admin.aclose()
    assert paused.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert effects == [0, 7]
    assert settled == 1


async def test_a_claim_redis_stalls_on_for_too_long_runs_nothing_and_the_retry_runs_once(
    make_settings: SettingsFactory,
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis silent for longer than a claim in doubt may wait (`SETTLE_WAIT`, 0.3 s here):
    503 + Retry-After, no side effect, no memory run; the possible claim is released once
    Redis answers, so the retry runs exactly once."""
    monkeypatch.setattr(idempotency_store, "SETTLE_WAIT", 0.3)
    with redis_server(tmp_path) as server:
        app, effects = _app(make_settings, server.url, redis_prefix, CORTIWARE_REDIS_TIMEOUT="0.2")
        admin = Redis.from_url(server.url)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with app.lifespan(), client:
            headers = {"Idempotency-Key": "order-paused"}
            await admin.execute_command("CLIENT", "PAUSE", 1200, "WRITE")
            paused = await client.post("/api/orders", json={"n": 7}, headers=headers)
            await asyncio.sleep(1.5)  # the pause ends; the background release runs
            retried = await client.post("/api/orders", json={"n": 7}, headers=headers)
            replay = await client.post("/api/orders", json={"n": 7}, headers=headers)
        await admin.aclose()
    assert paused.status_code == 503
    assert paused.headers["retry-after"] == "1"
    assert paused.headers["content-type"].startswith("application/problem+json")
    assert retried.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert effects == [7]


async def test_after_a_5xx_the_same_key_runs_again(
    make_settings: SettingsFactory, redis_url: str, redis_prefix: str
) -> None:
    """A 500 releases the key in Redis so the retry executes."""
    app, effects = _app(make_settings, redis_url, redis_prefix)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with app.lifespan(), client:
        headers = {"Idempotency-Key": "order-2"}
        failed = await client.post("/api/orders", json={"n": -1}, headers=headers)
        retried = await client.post("/api/orders", json={"n": -1}, headers=headers)
    assert failed.status_code == 500
    assert retried.status_code == 201
    assert effects == [-1, -1]


async def test_crashed_claim_is_taken_over_by_cas_and_the_old_token_loses(
    redis_url: str, redis_prefix: str
) -> None:
    """After the lease of a crashed claim, a new request takes it; the old token cannot write."""
    kv = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix))
    # The record expires at twice the lease: the margins (0.5 s each way) hold on a loaded
    # host, where 0.1 s leases let the record expire before the takeover (seen: ACQUIRED).
    store = IdempotencyStore(kv, secret=SEAL_SECRET, lease=1.0)
    old = await store.claim("k", "fp")
    assert (await store.claim("k", "fp")).outcome is ClaimOutcome.IN_PROGRESS
    await asyncio.sleep(1.5)
    new = await store.claim("k", "fp")
    assert old.token is not None
    assert new.token is not None
    assert new.outcome is ClaimOutcome.TAKEN_OVER
    assert not await store.complete("k", old.token, StoredResponse(200, [], b"old"))
    assert not await store.release("k", old.token)
    assert await store.complete("k", new.token, StoredResponse(200, [], b"new"))
    done = await store.claim("k", "fp")
    assert kv.redis is not None
    ttl = await kv.redis.ttl(f"{redis_prefix}idem:k")
    await kv.aclose()
    assert done.response == StoredResponse(200, [], b"new")
    assert 24 * 3600 - 5 < ttl <= 24 * 3600


def _limited_app(
    make_settings: SettingsFactory, redis_url: str, prefix: str
) -> tuple[Litestar, list[int]]:
    effects: list[int] = []

    @post("/api/items")
    async def create(data: JSONBody[dict[str, int]]) -> dict[str, int]:
        effects.append(data["n"])
        return {"n": data["n"]}

    settings = make_settings(
        REDIS_URL=redis_url, CORTIWARE_REDIS_PREFIX=prefix, RATE_LIMIT_DEFAULT="3/minute"
    )
    app = Litestar(
        route_handlers=[create],
        middleware=redis_middleware(settings),
        lifespan=[partial(redis_lifespan, settings=settings)],
        exception_handlers=exception_handlers,
    )
    return app, effects


async def test_keyed_requests_are_limited_by_the_claim_script_in_one_bucket(
    make_settings: SettingsFactory, redis_url: str, redis_prefix: str
) -> None:
    """The claim decides the limit: keyed and unkeyed requests share one exact bucket,
    carry the rate-limit headers, and a refused keyed request runs nothing and claims nothing.
    """
    app, effects = _limited_app(make_settings, redis_url, redis_prefix)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with app.lifespan(), client:
        first = await client.post("/api/items", json={"n": 1}, headers={"Idempotency-Key": "a"})
        plain = await client.post("/api/items", json={"n": 2})
        third = await client.post("/api/items", json={"n": 3}, headers={"Idempotency-Key": "b"})
        refused = await client.post("/api/items", json={"n": 4}, headers={"Idempotency-Key": "c"})
        refused_plain = await client.post("/api/items", json={"n": 5})
        redis = app.state.kv.redis
        claimed = [k async for k in redis.scan_iter(match=f"{redis_prefix}idem:*")]
    assert [r.status_code for r in (first, plain, third)] == [201, 201, 201]
    assert [r.headers["ratelimit-remaining"] for r in (first, plain, third)] == ["2", "1", "0"]
    assert first.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused_plain.status_code == 429
    assert effects == [1, 2, 3]
    assert len(claimed) == 2  # "a" and "b"; the refused "c" left no record


async def test_the_limiter_and_the_claim_script_decide_alike_on_redis(
    redis_url: str, redis_prefix: str
) -> None:
    """The GCRA the limiter runs and the one inside the claim script (one template, rendered
    twice) give the same decisions on Redis, refusals included, for several limits."""
    kv = KV.from_url(redis_url, KVConfig(key_prefix=redis_prefix))
    limiter = GCRALimiter(kv)
    store = IdempotencyStore(kv, secret=SEAL_SECRET)
    try:
        for limit, period in ((1, 3600.0), (3, 60.0), (7, 60.0)):
            for step in range(limit + 2):
                alone = await limiter.hit(f"alone-{limit}", limit, period)
                check = LimitCheck(limiter, f"claimed-{limit}", limit, period)
                claim = await store.claim(f"key-{limit}-{step}", "fp", check)
                decision = claim.decision
                assert decision is not None
                assert claim.outcome is (
                    ClaimOutcome.ACQUIRED if alone.allowed else ClaimOutcome.LIMITED
                )
                assert (decision.allowed, decision.limit, decision.remaining) == (
                    alone.allowed,
                    alone.limit,
                    alone.remaining,
                ), (limit, step)
                # The two ran a few milliseconds apart.
                assert abs(decision.reset_after - alone.reset_after) < 1.0, (limit, step)
                assert abs(decision.retry_after - alone.retry_after) < 1.0, (limit, step)
            assert not alone.allowed  # the run went past the limit
    finally:
        await store.aclose()
        await kv.aclose()


async def test_limit_and_claim_together_in_memory_while_redis_is_unconfigured() -> None:
    """Without Redis the combined claim uses the in-memory GCRA and store, same outcomes."""
    from cortiware.idempotency.store import LimitCheck
    from cortiware.ratelimit import GCRALimiter

    kv = KV(None)
    store, limiter = IdempotencyStore(kv, secret=SEAL_SECRET), GCRALimiter(kv)
    check = LimitCheck(limiter, "b", 2, 60)
    first = await store.claim("k1", "fp", check)
    again = await store.claim("k1", "fp", check)
    refused = await store.claim("k2", "fp", check)
    assert first.outcome is ClaimOutcome.ACQUIRED
    assert first.decision is not None
    assert first.decision.allowed
    assert first.decision.remaining == 1
    assert again.outcome is ClaimOutcome.IN_PROGRESS
    assert refused.outcome is ClaimOutcome.LIMITED
    assert refused.decision is not None
    assert not refused.decision.allowed
    assert (await store.claim("k2", "fp")).outcome is ClaimOutcome.ACQUIRED  # nothing was held


async def test_a_stored_invite_link_is_sealed_in_redis_and_still_replays(
    client: AsyncTestClient[Litestar], redis_url: str, redis_prefix: str
) -> None:
    """The invite link is shown once and only its hash is in the database: the response kept
    for replay must not hand it to whoever can read Redis. The replay still returns it."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    body = {"email": "sealed@example.com", "org_name": "Sealed Ltd"}
    headers = {"Idempotency-Key": "invite-sealed"}
    first = await client.post("/api/provider/invites", json=body, headers=headers)
    replay = await client.post("/api/provider/invites", json=body, headers=headers)
    assert first.status_code == 201, first.text
    token = first.json()["token"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["token"] == token

    redis = Redis.from_url(redis_url)
    try:
        stored = [
            value
            async for key in redis.scan_iter(match=f"{redis_prefix}idem:*")
            for value in (await redis.hgetall(key)).values()
        ]
    finally:
        await redis.aclose()
    assert stored, "the completed record is in Redis"
    assert not any(token.encode() in value for value in stored)
    assert not any(b"sealed@example.com" in value for value in stored)


async def test_a_record_sealed_under_a_rotated_secret_is_refused_not_run_again(
    make_settings: SettingsFactory, redis_url: str, redis_prefix: str
) -> None:
    """After `SESSION_SECRET` changes, a retry of a completed request gets 422 naming the
    cause; it neither runs again nor replays garbage."""
    headers = {"Idempotency-Key": "order-rotated"}
    before, effects = _app(make_settings, redis_url, redis_prefix)
    async with in_loop_client(before) as client:
        assert (await client.post("/api/orders", json={"n": 5}, headers=headers)).status_code == 201
    after, effects_after = _app(make_settings, redis_url, redis_prefix, SESSION_SECRET="r" * 48)
    async with in_loop_client(after) as client:
        retried = await client.post("/api/orders", json={"n": 5}, headers=headers)
    assert (effects, effects_after) == ([5], [])
    assert retried.status_code == 422
    assert retried.headers["content-type"].startswith("application/problem+json")
    assert "can no longer be read" in retried.json()["detail"]


class _ReplyDroppingProxy:
    """A TCP proxy in front of a real Redis that, once `drop_next` is set, lets the next
    request through but resets the client's connection instead of passing its reply back;
    once `delay_next` is set, holds the next reply back that many seconds."""

    def __init__(self, port: int) -> None:
        self.redis_port = port
        self.drop_next = False
        self.delay_next = 0.0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.redis_port)

        async def up() -> None:
            while data := await client_r.read(65536):
                redis_w.write(data)

        async def down() -> None:
            while data := await redis_r.read(65536):
                if self.drop_next:
                    self.drop_next = False
                    client_w.transport.abort()
                    return
                if self.delay_next:
                    delay, self.delay_next = self.delay_next, 0.0
                    await asyncio.sleep(delay)
                client_w.write(data)

        await asyncio.gather(up(), down(), return_exceptions=True)
        redis_w.close()
        client_w.close()


async def test_a_claim_whose_connection_dies_after_it_ran_is_asked_again_not_run_from_memory(
    redis_prefix: str, tmp_path: Path
) -> None:
    """The claim reached a live Redis and ran, then the connection was reset before its
    reply: the store asks again on a fresh connection and owns the claim on Redis (the script
    recognises its own token), instead of running from memory while Redis holds the claim."""
    with redis_server(tmp_path) as server:
        proxy = _ReplyDroppingProxy(server.port)
        async with proxy as url:
            kv = KV.from_url(url, KVConfig(key_prefix=redis_prefix, failure_threshold=5))
            store = IdempotencyStore(kv, secret=SEAL_SECRET)
            admin = Redis.from_url(server.url)
            try:
                warm = await store.claim("warm", "fp")  # scripts loaded, connection open
                assert warm.token is not None
                await store.release("warm", warm.token)
                before = metrics.snapshot().get("idempotency.claim_reasked", 0)
                proxy.drop_next = True
                claim = await store.claim("order-1", "fp")
                stored_token = await admin.hget(f"{redis_prefix}idem:order-1", "tok")
                assert claim.token is not None
                response = StoredResponse(201, [], b"ok")
                completed = await store.complete("order-1", claim.token, response)
                retry = await store.claim("order-1", "fp")
                reasked = metrics.snapshot().get("idempotency.claim_reasked", 0) - before
            finally:
                await kv.aclose()
                await admin.aclose()
    assert claim.outcome is ClaimOutcome.ACQUIRED
    assert stored_token == claim.token.encode()
    assert completed is True
    assert retry.outcome is ClaimOutcome.COMPLETED
    assert reasked == 1


async def test_a_reasked_claim_refused_by_its_own_rate_limit_releases_the_lost_claim(
    redis_prefix: str, tmp_path: Path
) -> None:
    """The lost attempt took the bucket's last token and the claim; asked again, the limit
    refuses (429): the claim the first attempt left behind is released, not left to block
    the key for the lease."""
    with redis_server(tmp_path) as server:
        proxy = _ReplyDroppingProxy(server.port)
        async with proxy as url:
            kv = KV.from_url(url, KVConfig(key_prefix=redis_prefix, failure_threshold=5))
            store = IdempotencyStore(kv, secret=SEAL_SECRET)
            limiter = GCRALimiter(kv)
            admin = Redis.from_url(server.url)
            try:  # warm: the limit-and-claim script loaded, so the dropped reply is its result
                warm = await store.claim("warm", "fp", LimitCheck(limiter, "warm", 1, 3600.0))
                assert warm.token is not None
                await store.release("warm", warm.token)
                proxy.drop_next = True
                claim = await store.claim("order-2", "fp", LimitCheck(limiter, "one", 1, 3600.0))
                await asyncio.sleep(0.3)  # the background release
                left = await admin.exists(f"{redis_prefix}idem:order-2")
            finally:
                await store.aclose()
                await kv.aclose()
                await admin.aclose()
    assert claim.outcome is ClaimOutcome.LIMITED
    assert left == 0


async def test_a_claim_whose_reply_comes_too_late_is_settled_on_redis(
    redis_prefix: str, tmp_path: Path
) -> None:
    """The claim ran on Redis but its reply came after the command timeout (in doubt): the
    store asks again with the same token, and owns the claim on Redis (the script recognises
    its own token) instead of answering 503 or running from memory."""
    with redis_server(tmp_path) as server:
        proxy = _ReplyDroppingProxy(server.port)
        async with proxy as url:
            kv = KV.from_url(url, KVConfig(key_prefix=redis_prefix, failure_threshold=5))
            store = IdempotencyStore(kv, secret=SEAL_SECRET)
            admin = Redis.from_url(server.url)
            try:
                warm = await store.claim("warm", "fp")  # scripts loaded, connection open
                assert warm.token is not None
                await store.release("warm", warm.token)
                before = metrics.snapshot().get("idempotency.settled", 0)
                proxy.delay_next = 1.0
                claim = await store.claim("order-3", "fp")
                stored_token = await admin.hget(f"{redis_prefix}idem:order-3", "tok")
                again = await store.claim("order-3", "fp")
                settled = metrics.snapshot().get("idempotency.settled", 0) - before
            finally:
                await store.aclose()
                await kv.aclose()
                await admin.aclose()
    assert claim.outcome is ClaimOutcome.ACQUIRED
    assert claim.token is not None
    assert stored_token == claim.token.encode()
    assert again.outcome is ClaimOutcome.IN_PROGRESS
    assert settled == 1
