"""Unit tests of the GCRA algorithm, client IP resolution, groups, headers and middleware."""

from __future__ import annotations

import ipaddress
from functools import cache, partial
from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from cortiware.app import create_app
from cortiware.errors import exception_handlers
from cortiware.middleware.client_ip import client_ip
from cortiware.ratelimit import GroupName, MemoryGCRA, rate_limit_subject
from cortiware.ratelimit.gcra import Decision
from cortiware.ratelimit.headers import rate_limit_headers
from cortiware.route_policy import SIGNED_WEBHOOK, declare, policy_of
from cortiware.settings import Settings
from cortiware.wiring import redis_lifespan, redis_middleware
from tests.conftest import SettingsFactory

PROXY = [ipaddress.ip_network("10.0.0.0/8")]


def _scope(peer: str, xff: str | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    return {"client": (peer, 1234), "headers": headers}


def test_memory_gcra_admits_exactly_the_limit_of_a_burst() -> None:
    """Of 50 instantaneous requests against 7 per minute, exactly 7 pass."""
    gcra = MemoryGCRA()
    decisions = [gcra.hit("k", 7, 60) for _ in range(50)]
    assert sum(d.allowed for d in decisions) == 7
    assert [d.remaining for d in decisions[:7]] == [6, 5, 4, 3, 2, 1, 0]
    refused = decisions[7]
    assert not refused.allowed
    assert 8 < refused.retry_after <= 60 / 7 + 0.01


def test_memory_gcra_keeps_buckets_apart() -> None:
    """Two keys have independent buckets."""
    gcra = MemoryGCRA()
    assert gcra.hit("a", 1, 60).allowed
    assert not gcra.hit("a", 1, 60).allowed
    assert gcra.hit("b", 1, 60).allowed


def test_untrusted_peer_forged_forwarded_for_is_ignored() -> None:
    """An X-Forwarded-For from an untrusted peer does not change the client IP."""
    assert client_ip(_scope("203.0.113.9", "1.2.3.4"), PROXY) == "203.0.113.9"
    assert client_ip(_scope("203.0.113.9", "1.2.3.4"), []) == "203.0.113.9"


def test_trusted_proxy_forwarded_for_gives_right_most_untrusted_entry() -> None:
    """Behind a trusted proxy the right-most untrusted X-Forwarded-For entry is the client."""
    scope = _scope("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.0.0.9")
    assert client_ip(scope, PROXY) == "198.51.100.7"


def test_ipv6_clients_share_a_bucket_per_64_and_ipv4_is_per_address() -> None:
    """An IPv6 client cannot take a fresh bucket per address of its /64."""
    assert rate_limit_subject("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert rate_limit_subject("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert rate_limit_subject("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert rate_limit_subject("::ffff:192.0.2.1") == "192.0.2.1"
    assert rate_limit_subject("192.0.2.1") == "192.0.2.1"
    assert rate_limit_subject("testclient") == "testclient"


async def test_addresses_of_one_ipv6_64_are_limited_together(
    make_settings: SettingsFactory,
) -> None:
    """Requests from two addresses of one /64 drain one bucket; another /64 has its own."""
    app = _app(make_settings, RATE_LIMIT_DEFAULT="2/minute")

    async def get_from(client: httpx.AsyncClient) -> int:
        return (await client.get("/api/ping")).status_code

    statuses = []
    async with app.lifespan():
        for address in (
            "2001:db8:0:1::10",
            "2001:db8:0:1::20",
            "2001:db8:0:1:abcd::1",
            "2001:db8:0:2::1",
        ):
            transport = httpx.ASGITransport(app=app, client=(address, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                statuses.append(await get_from(client))
    assert statuses == [200, 200, 429, 200]


def test_trusted_proxy_without_forwarded_for_gives_the_peer() -> None:
    """A trusted peer sending no X-Forwarded-For is itself the client."""
    assert client_ip(_scope("10.1.2.3"), PROXY) == "10.1.2.3"


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("POST", "/api/auth/login", "auth"),
        ("GET", "/api/onboarding/verify", "onboarding"),
        ("POST", "/api/onboarding/accept", "onboarding"),
        ("GET", "/api/plans", "default"),
        ("POST", "/api/auth/logout", "default"),
        ("GET", "/api/health", None),
        ("GET", "/api/health/live", None),
        ("POST", "/api/webhooks/stripe", None),
        ("GET", "/login", None),
    ],
)
def test_routes_map_to_the_contract_groups(method: str, path: str, group: str | None) -> None:
    """Each route of the app declares the group contract §3 names (or none when exempt)."""
    found = policy_of(_service_handler(method, path)).rate_limit
    assert (found.value if found else None) == group


@cache
def _service_routes() -> list[Any]:
    return create_app(Settings.from_env({})).routes


def _service_handler(method: str, path: str) -> Any:
    for route in _service_routes():
        if isinstance(route, HTTPRoute) and route.path_format == path:
            for handler in route.route_handlers:
                if method in handler.http_methods:
                    return handler
    raise AssertionError(f"no route {method} {path}")


def test_headers_carry_draft_and_legacy_fields_and_retry_after_only_when_refused() -> None:
    """Allowed decisions get five headers; refused ones add Retry-After in whole seconds."""
    ok = dict(rate_limit_headers("default", 60, Decision(True, 10, 9, 6.0, 0.0)))
    assert ok[b"ratelimit-policy"] == b'"default";q=10;w=60'
    assert ok[b"ratelimit"] == b'"default";r=9;t=6'
    assert ok[b"ratelimit-remaining"] == b"9"
    assert b"retry-after" not in ok
    refused = dict(rate_limit_headers("auth", 60, Decision(False, 10, 0, 60.0, 5.2)))
    assert refused[b"retry-after"] == b"6"


def _app(make_settings: SettingsFactory, **env: str) -> Litestar:
    @get("/api/ping", sync_to_thread=False)
    def ping() -> dict[str, str]:
        return {"ok": "yes"}

    @post("/api/auth/login", sync_to_thread=False, opt=declare(rate_limit=GroupName.AUTH))
    def login(data: JSONBody[dict[str, str]]) -> dict[str, str]:
        return {"username": data["username"]}

    @get("/api/webhooks/ping", sync_to_thread=False, opt=SIGNED_WEBHOOK)
    def hook() -> dict[str, str]:
        return {"ok": "yes"}

    return _minimal_app(make_settings(**env), [ping, login, hook])


def _minimal_app(settings: Any, handlers: list[Any]) -> Litestar:
    """The service's Redis middleware and lifespan around `handlers`, nothing else."""
    return Litestar(
        route_handlers=handlers,
        middleware=redis_middleware(settings),
        lifespan=[partial(redis_lifespan, settings=settings)],
        exception_handlers=exception_handlers,
    )


async def test_middleware_answers_429_problem_json_with_retry_after(
    make_settings: SettingsFactory,
) -> None:
    """Past the default limit the API answers 429 problem+json with Retry-After."""
    app = _app(make_settings, RATE_LIMIT_DEFAULT="2/minute")
    async with AsyncTestClient(app) as client:
        first = await client.get("/api/ping")
        assert first.headers["ratelimit-remaining"] == "1"
        assert (await client.get("/api/ping")).status_code == 200
        refused = await client.get("/api/ping")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["status"] == 429


async def test_login_limit_is_per_username_and_login_body_still_reaches_handler(
    make_settings: SettingsFactory,
) -> None:
    """The auth group keys by IP + username, and the handler still reads the JSON body."""
    app = _app(make_settings, RATE_LIMIT_AUTH="1/minute")
    async with AsyncTestClient(app) as client:
        first = await client.post("/api/auth/login", json={"username": "Alice", "password": "x"})
        again = await client.post("/api/auth/login", json={"username": "alice", "password": "y"})
        other = await client.post("/api/auth/login", json={"username": "bob", "password": "x"})
    assert first.status_code == 201
    assert first.json() == {"username": "Alice"}
    assert again.status_code == 429
    assert other.status_code == 201


async def test_webhooks_and_health_are_not_limited_and_disabled_means_no_limit(
    make_settings: SettingsFactory,
) -> None:
    """Webhooks and health never count; RATE_LIMIT_ENABLED=false disables every group."""
    app = _app(make_settings, RATE_LIMIT_DEFAULT="1/minute")
    async with AsyncTestClient(app) as client:
        statuses = {(await client.get("/api/webhooks/ping")).status_code for _ in range(3)}
        assert statuses == {200}
        assert "ratelimit" not in (await client.get("/api/health/live")).headers
    app = _app(make_settings, RATE_LIMIT_DEFAULT="1/minute", RATE_LIMIT_ENABLED="false")
    async with AsyncTestClient(app) as client:
        assert {(await client.get("/api/ping")).status_code for _ in range(3)} == {200}
