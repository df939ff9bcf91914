"""The service over real HTTP for the security suite: uvicorn in a thread, on loopback.

In-process (not a `cortiware serve` subprocess) so the app's Stripe client can be the fake
transport; everything else (sockets, HTTP parsing, middleware, PostgreSQL, Redis) is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import uvicorn
from litestar import Litestar

from cortiware.app import create_app
from cortiware.billing.client import STRIPE_STATE_KEY
from cortiware.settings import Settings
from tests.support.auth import OWNER_PASSWORD, STAFF_PASSWORDS
from tests.support.servers import free_port
from tests.support.stripe_fake import FakeStripe, fake_client


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[tuple[str, Litestar, FakeStripe]]:
    """`create_app(settings)` behind uvicorn on a free port; yields its base URL, app, fake."""
    app = create_app(settings)
    fake = FakeStripe()
    app.state[STRIPE_STATE_KEY] = fake_client(settings, fake)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app, fake
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class Identity:
    """Cookies and headers that make requests as one caller."""

    name: str
    cookies: dict[str, str]
    headers: dict[str, str]


def log_in(base: str, username: str, password: str, name: str) -> Identity:
    """Log in over HTTP and keep the session cookies and the CSRF token."""
    with httpx.Client(base_url=base) as http:
        response = http.post("/api/auth/login", json={"username": username, "password": password})
        response.raise_for_status()
        return Identity(name, dict(http.cookies), {"X-CSRF-Token": response.json()["csrf_token"]})


def onboard_owner(base: str, provider: Identity) -> tuple[Identity, str]:
    """Invite and accept over HTTP as a client would; the owner's identity and e-mail."""
    email = f"fuzz-owner-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=base, cookies=provider.cookies, headers=provider.headers) as http:
        invite = http.post("/api/provider/invites", json={"email": email, "org_name": "Fuzz Co"})
        invite.raise_for_status()
    token = invite.json()["token"]
    with httpx.Client(base_url=base) as http:
        accepted = http.post(
            "/api/onboarding/accept",
            json={"token": token, "name": "Fuzz Owner", "password": OWNER_PASSWORD},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        accepted.raise_for_status()
    return log_in(base, email, OWNER_PASSWORD, "owner"), email


def staff(base: str, role: str) -> Identity:
    """The test environment's `role` staff account, logged in."""
    return log_in(base, role, STAFF_PASSWORDS[role], role)
