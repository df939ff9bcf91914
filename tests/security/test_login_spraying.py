"""Password spraying from one address is limited across usernames (attacker's side, real HTTP).

An attacker tries one password on many usernames from one IP: each username's own bucket
never fills, so only the per-IP login limit (`RATE_LIMIT_AUTH_IP`) can stop it. Run over
real HTTP against the service on PostgreSQL and Redis, through the API and the /login form.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from cortiware.settings import Settings
from tests.conftest import SettingsFactory
from tests.security._served import served
from tests.support.auth import STAFF_PASSWORDS

PER_IP = 12
USERNAMES = 3 * PER_IP


@pytest.fixture
def base(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> Iterator[str]:
    """The service with the per-username limit (10/minute) far above what the spray sends
    per name (one try each), and a per-IP login limit of PER_IP an hour (GCRA refills
    continuously: per hour, none comes back while the spray runs)."""
    settings: Settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        RATE_LIMIT_AUTH="10/minute",
        RATE_LIMIT_AUTH_IP=f"{PER_IP}/hour",
    )
    with served(settings) as (url, _app, _fake):
        yield url


def test_spraying_the_api_from_one_ip_is_refused_after_the_per_ip_limit(base: str) -> None:
    """Of many usernames tried once each from one IP, only PER_IP are answered 401; the rest
    get 429 with Retry-After, and nothing is hashed for them."""
    statuses: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as attacker:
        for _ in range(USERNAMES):
            username = f"victim-{uuid.uuid4().hex[:8]}@example.com"
            response = attacker.post(
                "/api/auth/login", json={"username": username, "password": "Summer2026!"}
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) > 0
                assert response.headers["content-type"].startswith("application/problem+json")
    assert statuses.count(401) == PER_IP
    assert statuses.count(429) == USERNAMES - PER_IP
    assert statuses[:PER_IP] == [401] * PER_IP


def test_spraying_the_login_form_shares_the_per_ip_limit(base: str) -> None:
    """The /login form counts in the same per-IP bucket as the API's login."""
    statuses: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as attacker:
        for index in range(PER_IP + 3):
            form = {"username": f"victim-{index}@example.com", "password": "Summer2026!"}
            path = "/login" if index % 2 else "/api/auth/login"
            if path == "/login":
                statuses.append(attacker.post(path, data=form).status_code)
            else:
                statuses.append(attacker.post(path, json=form).status_code)
    assert statuses.count(429) == 3
    assert statuses[-3:] == [429, 429, 429]


def test_the_per_ip_limit_leaves_other_addresses_alone(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """A spray that exhausts one address's login limit does not lock out another address."""
    settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        RATE_LIMIT_AUTH_IP=f"{PER_IP}/hour",
        TRUSTED_PROXIES="127.0.0.1/32",  # the test plays two clients behind a proxy
    )
    with served(settings) as (url, _app, _fake), httpx.Client(base_url=url, timeout=30) as http:
        sprayer = {"X-Forwarded-For": "203.0.113.7"}
        for index in range(PER_IP + 1):
            http.post(
                "/api/auth/login",
                json={"username": f"v{index}@example.com", "password": "x"},
                headers=sprayer,
            )
        blocked = http.post(
            "/api/auth/login",
            json={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
            headers=sprayer,
        )
        assert blocked.status_code == 429
        other = http.post(
            "/api/auth/login",
            json={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
            headers={"X-Forwarded-For": "198.51.100.9"},
        )
        assert other.status_code == 200
