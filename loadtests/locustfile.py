"""Locust scenarios for the Cortiware service, with pass/fail thresholds.

Run through `loadtests/run.py` (which starts a local service) or directly:

    locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 30s --host http://127.0.0.1:8000

Thresholds (the process exits 1 when one is missed): failure ratio under 1 %, 95th percentile
under 250 ms for every read endpoint, 99th percentile under 1000 ms overall. Staff
credentials come from the same variables as the service (development defaults otherwise).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from locust import HttpUser, between, events, task

PROVIDER = (
    os.environ.get("PROVIDER_USERNAME", "provider"),
    os.environ.get("PROVIDER_PASSWORD", "provider-dev-password"),
)
MAX_FAILURE_RATIO = float(os.environ.get("LOAD_MAX_FAILURE_RATIO", "0.01"))
MAX_READ_P95_MS = float(os.environ.get("LOAD_MAX_READ_P95_MS", "250"))
MAX_P99_MS = float(os.environ.get("LOAD_MAX_P99_MS", "1000"))
READS = (
    "GET /api/health/live",
    "GET /api/health",
    "GET /api/plans",
    "GET /api/provider/organizations",
)


class PublicVisitor(HttpUser):
    """Anonymous traffic: health probes and the public plan list."""

    weight = 3
    wait_time = between(0.05, 0.2)

    @task(5)
    def plans(self) -> None:
        """The cached public plan list."""
        self.client.get("/api/plans", name="GET /api/plans")

    @task(2)
    def live(self) -> None:
        """Liveness, as the load balancer does."""
        self.client.get("/api/health/live", name="GET /api/health/live")

    @task(1)
    def health(self) -> None:
        """Readiness with dependency checks, as the canary does."""
        self.client.get("/api/health", name="GET /api/health")


class ProviderOperator(HttpUser):
    """A logged-in provider: lists organizations and invites new ones."""

    weight = 1
    wait_time = between(0.1, 0.5)
    csrf = ""

    def on_start(self) -> None:
        """Log in once; keep the session cookie and the CSRF token."""
        response = self.client.post(
            "/api/auth/login",
            json={"username": PROVIDER[0], "password": PROVIDER[1]},
            name="POST /api/auth/login",
        )
        self.csrf = response.json().get("csrf_token", "") if response.ok else ""

    @task(5)
    def organizations(self) -> None:
        """The provider's organization list."""
        self.client.get("/api/provider/organizations", name="GET /api/provider/organizations")

    @task(1)
    def invite_and_accept(self) -> None:
        """The onboarding funnel: invite, verify, accept (with an Idempotency-Key)."""
        suffix = uuid.uuid4().hex[:10]
        response = self.client.post(
            "/api/provider/invites",
            json={"email": f"owner-{suffix}@load.example", "org_name": f"Load {suffix}"},
            headers={"X-CSRF-Token": self.csrf, "Idempotency-Key": uuid.uuid4().hex},
            name="POST /api/provider/invites",
        )
        if response.status_code != 201:
            return
        token = response.json()["token"]
        self.client.get(
            "/api/onboarding/verify", params={"token": token}, name="GET /api/onboarding/verify"
        )
        # A separate client: the public accept runs without the provider's session.
        self.client.cookies.clear()
        self.client.post(
            "/api/onboarding/accept",
            json={"token": token, "name": "Load Owner", "password": "load-test-password-123"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
            name="POST /api/onboarding/accept",
        )
        self.on_start()


@events.quitting.add_listener
def enforce_thresholds(environment: Any, **_kwargs: Any) -> None:
    """Set exit code 1 when a threshold is missed, printing which."""
    stats = environment.stats
    problems: list[str] = []
    if stats.total.num_requests == 0:
        problems.append("no requests were made")
    elif stats.total.fail_ratio > MAX_FAILURE_RATIO:
        problems.append(f"failure ratio {stats.total.fail_ratio:.2%} > {MAX_FAILURE_RATIO:.2%}")
    for name in READS:
        method = name.split(" ", 1)[0]
        entry = stats.entries.get((name, method))
        if not (entry and entry.num_requests):
            continue
        p95 = entry.get_response_time_percentile(0.95)
        if p95 > MAX_READ_P95_MS:
            problems.append(f"{name} p95 {p95:.0f} ms > {MAX_READ_P95_MS:.0f} ms")
    p99 = stats.total.get_response_time_percentile(0.99) if stats.total.num_requests else 0
    if p99 > MAX_P99_MS:
        problems.append(f"overall p99 {p99:.0f} ms > {MAX_P99_MS:.0f} ms")
    for problem in problems:
        print(f"THRESHOLD MISSED: {problem}")
    print("thresholds: " + ("FAIL" if problems else "PASS"))
    environment.process_exit_code = 1 if problems else 0
