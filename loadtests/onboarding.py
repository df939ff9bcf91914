"""Onboarding with 100 concurrent users: invite -> verify -> accept -> owner login -> owner page.

Each user is a provider inviting an organization whose owner then completes the funnel, with
a person's pauses between steps. Acknowledged invites and organizations are recorded and
checked in the database after the run.
"""

from __future__ import annotations

import random
import uuid

import gevent
from common import STAFF, LoggedIn, ScenarioUser, record_write
from locust import between, task

OWNER_PASSWORD = "load-owner-password-0123"  # noqa: S105 - a throw-away account's password


def _pause() -> None:
    gevent.sleep(random.uniform(0.3, 1.0))


class OnboardingFunnel(ScenarioUser):
    """A provider invites; the invited owner verifies, accepts, logs in, opens /owner."""

    wait_time = between(3, 8)
    provider: LoggedIn | None = None

    def on_start(self) -> None:
        """Log in as the provider once."""
        self.provider = self.login(*STAFF["provider"])

    @task
    def onboard_one_organization(self) -> None:
        """One organization through the whole funnel."""
        if self.provider is None:
            self.provider = self.login(*STAFF["provider"])
            return
        suffix = uuid.uuid4().hex[:12]
        invite = self.write(
            "/api/provider/invites",
            "POST /api/provider/invites",
            {"email": f"owner-{suffix}@load.example", "org_name": f"Load {suffix}"},
            self.provider,
        )
        if invite.status_code != 201:
            return
        body = invite.json()
        record_write("invite", body["id"])
        _pause()
        verify = self.read(
            f"/api/onboarding/verify?token={body['token']}", "GET /api/onboarding/verify"
        )
        if verify.status_code != 200:
            return
        _pause()
        accepted = self.write(
            "/api/onboarding/accept",
            "POST /api/onboarding/accept",
            {"token": body["token"], "name": "Load Owner", "password": OWNER_PASSWORD},
            None,
        )
        if accepted.status_code != 201:
            return
        record_write("organization", accepted.json()["organization_id"])
        _pause()
        owner = self.login(f"owner-{suffix}@load.example", OWNER_PASSWORD)
        if owner is None:
            return
        self.read("/owner", "GET /owner", owner)
        self.read("/api/owner/organization", "GET /api/owner/organization", owner)
        self.read("/api/owner/subscription", "GET /api/owner/subscription", owner)
