"""No secret or token in the service's log output over a whole journey.

`cortiware serve` runs as its own process (real logging configuration, stdout captured to a
file) on PostgreSQL, Redis and the Stripe fake served over HTTP. The journey: a failed and a
good login, an invite, the onboarding page and verify, accept, the owner's login and billing
portal, signed and forged Stripe and federation webhooks, error answers, logout. Then every
secret value and every token the journey saw is searched for in the output.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db import migrate
from cortiware.db.engine import create_engine
from cortiware.seed import seed
from cortiware.settings import ALL_VARIABLES
from tests.conftest import TEST_ENV
from tests.integration.backends import Backends, scratch_database
from tests.security._served import serve_process
from tests.support.auth import OWNER_PASSWORD, STAFF_PASSWORDS
from tests.support.stripe_fake import signed, subscription_event, subscription_object
from tests.support.stripe_server import serve_fake_stripe


async def _migrate_and_seed(url: str) -> None:
    await migrate.upgrade(url)
    engine = create_engine(url, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await seed(session)
    finally:
        await engine.dispose()


def _federation_headers(secret: str, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        "content-type": "application/json",
    }


def _journey(base: str) -> set[str]:
    """Walk the journey; return every token, cookie and signature it handled."""
    seen: set[str] = set()
    with httpx.Client(base_url=base, timeout=30) as anon:
        assert anon.get("/login").status_code == 200
        bad = anon.post("/api/auth/login", json={"username": "provider", "password": "wrong-pw"})
        assert bad.status_code == 401
    with httpx.Client(base_url=base, timeout=30) as provider:
        login = provider.post(
            "/api/auth/login",
            json={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
        )
        assert login.status_code == 200
        provider.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        seen |= {login.json()["csrf_token"], *provider.cookies.values()}
        email = f"logscan-{uuid.uuid4().hex[:8]}@example.com"
        invite = provider.post("/api/provider/invites", json={"email": email, "org_name": "Logs"})
        assert invite.status_code == 201, invite.text
        token = invite.json()["token"]
        seen |= {token, token.rsplit(".", 1)[-1]}
        assert provider.get("/api/provider/invites").status_code == 200
        assert provider.get("/api/provider/audit").status_code == 200
        assert provider.post("/api/auth/logout").status_code == 204
    with httpx.Client(base_url=base, timeout=30) as visitor:
        assert visitor.get("/onboarding", params={"token": token}).status_code == 200
        assert visitor.get("/api/onboarding/verify", params={"token": token}).status_code == 200
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert visitor.get("/api/onboarding/verify", params={"token": tampered}).status_code == 400
        accept = visitor.post(
            "/api/onboarding/accept",
            json={"token": token, "name": "Lo Gs", "password": OWNER_PASSWORD},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert accept.status_code == 201, accept.text
        again = visitor.post(
            "/api/onboarding/accept",
            json={"token": token, "name": "Lo Gs", "password": OWNER_PASSWORD},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert again.status_code == 409
        assert visitor.get("/onboarding", params={"token": token}).status_code in (200, 409)
    with httpx.Client(base_url=base, timeout=30) as owner:
        login = owner.post("/api/auth/login", json={"username": email, "password": OWNER_PASSWORD})
        assert login.status_code == 200
        owner.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        seen |= {login.json()["csrf_token"], *owner.cookies.values()}
        assert owner.get("/api/auth/me").status_code == 200
        portal = owner.post("/api/owner/billing/portal")
        assert portal.status_code == 200, portal.text
        assert (
            owner.post("/api/owner/billing/checkout", json={"price_id": "nope"}).status_code == 422
        )
        assert owner.post(
            "/api/owner/billing/portal", content=b"{", headers={"content-type": "application/json"}
        ).status_code in (200, 400)
        assert owner.post("/api/auth/logout").status_code == 204
    with httpx.Client(base_url=base, timeout=30) as stripe_sender:
        body = subscription_event(
            f"evt_{uuid.uuid4().hex[:12]}",
            "customer.subscription.updated",
            int(time.time()),
            subscription_object(f"sub_{uuid.uuid4().hex[:10]}"),
        )
        headers = signed(body, TEST_ENV["STRIPE_WEBHOOK_SECRET"].split(",")[0])
        seen.add(headers["Stripe-Signature"])
        assert (
            stripe_sender.post("/api/webhooks/stripe", content=body, headers=headers).status_code
            == 200
        )
        forged = signed(body, "whsec_forged")
        assert (
            stripe_sender.post("/api/webhooks/stripe", content=body, headers=forged).status_code
            == 400
        )
        fed_body = json.dumps({"type": "ping", "data": {}}).encode()
        fed = _federation_headers(TEST_ENV["FEDERATION_WEBHOOK_SECRETS"], fed_body)
        seen.add(fed["webhook-signature"])
        status = stripe_sender.post(
            "/api/webhooks/federation", content=fed_body, headers=fed
        ).status_code
        assert status < 500
        assert stripe_sender.get("/api/nowhere").status_code == 404
    return seen


@pytest.fixture(scope="module")
def journey_log(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, set[str]]]:
    """The service's whole output over the journey, and what the journey handled."""
    log = tmp_path_factory.mktemp("logscan") / "serve.log"
    with scratch_database(backends.admin_database_url) as url, serve_fake_stripe() as (api, _):
        asyncio.run(_migrate_and_seed(url))
        env = TEST_ENV | {
            "DATABASE_URL": url,
            "REDIS_URL": backends.redis_url,
            "CORTIWARE_REDIS_PREFIX": f"cwlogs:{uuid.uuid4().hex[:12]}:",
            "CORTIWARE_TEST_STRIPE_API_BASE": api,
        }
        with serve_process(env, log) as base:
            env["BASE_URL"] = base
            seen = _journey(base)
        yield log.read_text(), seen


SECRET_NAMES = [row.name for _, row in ALL_VARIABLES if row.secret and row.name in TEST_ENV]


def test_the_journey_was_logged(journey_log: tuple[str, set[str]]) -> None:
    """The scanned output holds the journey's request lines (the scan saw real output)."""
    output, _ = journey_log
    for path in ("/api/auth/login", "/api/onboarding/accept", "/api/webhooks/stripe"):
        assert f'"path":"{path}"' in output, path


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_no_configured_secret_is_logged(journey_log: tuple[str, set[str]], name: str) -> None:
    """No secret variable's value (nor any of its comma-separated parts) is in the output."""
    output, _ = journey_log
    for part in TEST_ENV[name].split(","):
        assert part.strip() not in output


def test_no_password_token_cookie_or_signature_is_logged(journey_log: tuple[str, set[str]]) -> None:
    """Passwords, the invite token (or its signature), session cookies, CSRF tokens and
    webhook signatures handled during the journey are nowhere in the output."""
    output, seen = journey_log
    values = seen | {OWNER_PASSWORD, *STAFF_PASSWORDS.values()}
    leaked = sorted(value[:6] + "…" for value in values if len(value) >= 8 and value in output)
    assert not leaked
