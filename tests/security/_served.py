"""The service over real HTTP for the security suite: uvicorn in a thread, on loopback.

In-process (not a `cortiware serve` subprocess) so the app's Stripe client can be the fake
transport; everything else (sockets, HTTP parsing, middleware, PostgreSQL, Redis) is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """`cortiware serve` as its own process (Stripe calls to `CORTIWARE_TEST_STRIPE_API_BASE`),
    stdout and stderr to `log`; yields its base URL and terminates it at the end."""
    port = free_port()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    process_env = keep | {"PYTHONPATH": str(REPO_ROOT), "STRIPE_SUPPRESS_NOTICES": "true"} | env
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.serve_on_fake_stripe",
                "serve",
                "--port",
                f"{port}",
            ],
            cwd=REPO_ROOT,
            env=process_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start:\n{log.read_text()}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)
