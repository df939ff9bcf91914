"""The provider dashboard with 50 concurrent users: log in, open /provider, read behind it.

Each user is a provider who logs in, opens the dashboard page and then reads what it shows
(organizations, invites, plans, coupons, monetization config, audit log), with a person's
pauses between clicks.
"""

from __future__ import annotations

import random

from common import STAFF, LoggedIn, ScenarioUser
from locust import between, task

READS = (
    "/api/provider/organizations",
    "/api/provider/invites",
    "/api/provider/plans",
    "/api/provider/coupons",
    "/api/provider/monetization/config",
    "/api/provider/audit",
)


class ProviderDashboard(ScenarioUser):
    """A provider on the dashboard."""

    wait_time = between(0.5, 2)
    provider: LoggedIn | None = None

    def on_start(self) -> None:
        """Log in, as a person opening the dashboard does."""
        self.provider = self.login(*STAFF["provider"])

    @task(3)
    def dashboard_page(self) -> None:
        """The server-rendered dashboard."""
        if self.provider is None:
            self.provider = self.login(*STAFF["provider"])
            return
        self.read("/provider", "GET /provider", self.provider)

    @task(6)
    def a_read_behind_it(self) -> None:
        """One of the reads the dashboard shows."""
        if self.provider is None:
            return
        path = random.choice(READS)
        self.read(path, f"GET {path}", self.provider)

    @task(1)
    def log_in_again(self) -> None:
        """A new session, as people come and go."""
        self.provider = self.login(*STAFF["provider"])
