"""What every scenario shares: logins, requests that record their outcome, and the record.

Every request's time, name, status and duration go to the file named by `LOAD_RECORD`
plus `.<pid>` (JSON, written when each Locust process quits), with the ids of the writes
the service acknowledged (2xx) and, for each error, its problem `detail`. `loadtests/run.py`
judges the run from those files (`loadtests/thresholds.py`), so the same rules apply against
a local or a deployed stack.

A write is sent with an `Idempotency-Key` and, like a well-behaved client, sent again with
the same key after a 503 (waiting its `Retry-After`, for up to `WRITE_RETRY_SECONDS`): a
chaos run then proves that nothing acknowledged is lost and nothing is done twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import gevent
from locust import FastHttpUser, events

__all__ = ["STAFF", "LoggedIn", "ScenarioUser", "record_write"]

STAFF = {
    role: (
        os.environ.get(f"{role.upper()}_USERNAME", role),
        os.environ.get(f"{role.upper()}_PASSWORD", f"{role}-dev-password"),
    )
    for role in ("provider", "developer", "accountant")
}
WRITE_RETRY_SECONDS = 30.0
_requests: list[tuple[float, str, int, float]] = []
_writes: list[tuple[str, str]] = []
_errors: list[tuple[str, int, str]] = []


@events.request.add_listener
def _record(
    name: str, response_time: float, response: Any = None, exception: Any = None, **_: Any
) -> None:
    status = 0 if exception is not None and response is None else int(response.status_code or 0)
    _requests.append((time.time(), name, status, float(response_time)))
    if status >= 400 or status == 0:  # why, for the run's error summary
        detail = str(exception) if response is None else _detail(response)
        _errors.append((name, status, detail[:120]))


def _detail(response: Any) -> str:
    try:
        return str(json.loads(response.text or "{}").get("detail", ""))
    except (ValueError, AttributeError):
        return (response.text or "")[:120]


def record_write(kind: str, identifier: str) -> None:
    """Remember a write the service acknowledged (checked in the database afterwards)."""
    _writes.append((kind, identifier))


@events.quitting.add_listener
def _save(**_: Any) -> None:
    path = os.environ.get("LOAD_RECORD")
    if path:  # one file per process (`locust --processes` forks workers)
        with open(f"{path}.{os.getpid()}", "w", encoding="utf-8") as out:
            json.dump({"requests": _requests, "writes": _writes, "errors": _errors}, out)


@dataclass
class LoggedIn:
    """A session: the cookie header to send and the CSRF token for unsafe requests."""

    cookie: str
    csrf: str


class ScenarioUser(FastHttpUser):
    """A `FastHttpUser` with logins and retried idempotent writes; cookies sent explicitly
    (several identities per user, so the client's own cookie jar is emptied after each)."""

    abstract = True

    def login(self, username: str, password: str) -> LoggedIn | None:
        """Log in through the JSON API; None when it did not answer 200."""
        response = self.client.post(
            "/api/auth/login",
            json={"username": username, "password": password},
            name="POST /api/auth/login",
        )
        session = next(
            (f"{c.name}={c.value}" for c in self.client.cookiejar if c.name.endswith("cw_session")),
            "",
        )
        self.client.cookiejar.clear()
        if response.status_code != 200:
            return None
        return LoggedIn(cookie=session, csrf=response.json().get("csrf_token", ""))

    def read(self, path: str, name: str, who: LoggedIn | None = None) -> Any:
        """GET `path` (as `who` when given); the response."""
        headers = {"Cookie": who.cookie} if who else {}
        response = self.client.get(path, name=name, headers=headers)
        self.client.cookiejar.clear()
        return response

    def write(self, path: str, name: str, body: dict[str, Any], who: LoggedIn | None) -> Any:
        """POST `body` with a fresh Idempotency-Key, again with the same key after a 503 or
        a 409 (in progress); the last response."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        if who is not None:
            headers |= {"Cookie": who.cookie, "X-CSRF-Token": who.csrf}
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        while True:
            response = self.client.post(path, json=body, name=name, headers=headers)
            self.client.cookiejar.clear()
            if response.status_code not in (409, 503) or time.monotonic() > deadline:
                return response
            retry_after = float(response.headers.get("retry-after") or 1)
            gevent.sleep(min(retry_after, 2.0))
