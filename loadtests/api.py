"""The API at a constant 1,000 requests/s, mixing public and authenticated reads.

`API_USERS` users (run.py sets `-u` to it) each send `API_RATE / API_USERS` requests per
second (`constant_throughput`), so the offered load is constant whatever the latency, as
long as the service keeps up. Public: the plan list, liveness. Authenticated: the
provider's organizations and plans, who-am-I.
"""

from __future__ import annotations

import os

from common import STAFF, LoggedIn, ScenarioUser
from locust import constant_throughput, task

API_RATE = float(os.environ.get("API_RATE", "1000"))
API_USERS = int(os.environ.get("API_USERS", "100"))


class ApiClient(ScenarioUser):
    """One API client at a constant request rate."""

    wait_time = constant_throughput(API_RATE / API_USERS)
    provider: LoggedIn | None = None

    def on_start(self) -> None:
        """Log in as the provider (every client holds its own session)."""
        self.provider = self.login(*STAFF["provider"])

    @task(4)
    def plans(self) -> None:
        """The public, cached plan list."""
        self.read("/api/plans", "GET /api/plans")

    @task(1)
    def live(self) -> None:
        """Liveness, as a load balancer asks."""
        self.read("/api/health/live", "GET /api/health/live")

    @task(3)
    def organizations(self) -> None:
        """The provider's organization list (cached)."""
        self.read("/api/provider/organizations", "GET /api/provider/organizations", self.provider)

    @task(1)
    def provider_plans(self) -> None:
        """The provider's plan list."""
        self.read("/api/provider/plans", "GET /api/provider/plans", self.provider)

    @task(1)
    def me(self) -> None:
        """Who am I (the session alone)."""
        self.read("/api/auth/me", "GET /api/auth/me", self.provider)
