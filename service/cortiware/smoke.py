"""`cortiware smoke --base-url URL`: the post-deploy checks the runbooks and the deploy call.

The requirements' uptime endpoints (`/api/health`, `/api/onboarding/verify`, `/provider`,
`/owner`) plus liveness, readiness, the error format and the public API; with
`--expect-version TAG` the deployed image tag must be the one health reports, and with
`--username` (password from `SMOKE_PASSWORD`) a real login, `me` and logout are made.
Each check is one or a few HTTP requests with a short timeout; the command exits 0 only
when all pass.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

import click
import httpx

__all__ = ["CheckResult", "SmokeOptions", "run_smoke", "smoke_command"]

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one smoke check."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SmokeOptions:
    """What the checks expect beyond the defaults."""

    expect_version: str | None = None
    """The image tag `/api/health` must report; None accepts any."""
    username: str | None = None
    """A staff or owner login to try; None skips the login check."""
    password: str | None = None


Check = Callable[[httpx.Client, SmokeOptions], str]


class _Failed(Exception):
    pass


def _expect(condition: bool, response: httpx.Response) -> None:
    if not condition:
        raise _Failed(f"unexpected {response.status_code} {response.text[:120]!r}")


def _live(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/health/live")
    _expect(response.status_code == 200 and response.json() == {"status": "ok"}, response)
    return "200 ok"


def _ready(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/health/ready")
    _expect(response.status_code == 200 and response.json().get("status") == "ready", response)
    return "200 ready"


def _health(client: httpx.Client, options: SmokeOptions) -> str:
    response = client.get("/api/health")
    body = response.json()
    _expect(response.status_code == 200 and body.get("status") == "healthy", response)
    version = body.get("version")
    if options.expect_version is not None and version != options.expect_version:
        raise _Failed(f"version {version!r}, expected {options.expect_version!r}")
    return f"healthy, version {version}"


def _verify_refuses_missing_token(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/onboarding/verify")
    _expect(
        response.status_code == 400
        and response.headers.get("content-type", "").startswith(PROBLEM_JSON),
        response,
    )
    return "missing token is a 400 problem+json"


def _page_leads_to_login(path: str) -> Check:
    def check(client: httpx.Client, _: SmokeOptions) -> str:
        response = client.get(path)
        location = urlsplit(response.headers.get("location", "")).path
        _expect(response.status_code in (302, 303) and location == "/login", response)
        login = client.get("/login")
        _expect(login.status_code == 200 and "<form" in login.text, login)
        return f"{response.status_code} to /login, which serves the form"

    return check


def _plans(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/plans")
    _expect(response.status_code == 200 and isinstance(response.json(), list), response)
    return f"{len(response.json())} active plan(s)"


def _problem_json(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/__smoke_not_found__")
    _expect(
        response.status_code == 404
        and response.headers.get("content-type", "").startswith(PROBLEM_JSON),
        response,
    )
    return "404 is problem+json"


def _auth_required(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/provider/organizations")
    _expect(response.status_code == 401, response)
    return "provider API refuses anonymous callers"


def _openapi(client: httpx.Client, _: SmokeOptions) -> str:
    response = client.get("/api/docs/openapi.json")
    _expect(response.status_code == 200 and "paths" in response.json(), response)
    return f"{len(response.json()['paths'])} documented paths"


def _login(client: httpx.Client, options: SmokeOptions) -> str:
    response = client.post(
        "/api/auth/login", json={"username": options.username, "password": options.password}
    )
    _expect(response.status_code == 200, response)
    role, token = response.json()["role"], response.json()["csrf_token"]
    me = client.get("/api/auth/me")
    _expect(me.status_code == 200 and me.json().get("role") == role, me)
    logout = client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    _expect(logout.status_code == 204, logout)
    return f"logged in as {role}, session seen, logged out"


CHECKS: tuple[tuple[str, Check], ...] = (
    ("liveness", _live),
    ("readiness", _ready),
    ("health", _health),
    ("onboarding", _verify_refuses_missing_token),
    ("provider page", _page_leads_to_login("/provider")),
    ("owner page", _page_leads_to_login("/owner")),
    ("public plans", _plans),
    ("error format", _problem_json),
    ("authorization", _auth_required),
    ("openapi", _openapi),
)


def run_smoke(
    base_url: str, *, timeout: float = 5.0, options: SmokeOptions | None = None
) -> list[CheckResult]:
    """Run every check against `base_url` and return their results (login only with a user)."""
    options = options or SmokeOptions()
    checks = list(CHECKS)
    if options.username:
        checks.append(("login", _login))
    results: list[CheckResult] = []
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        for name, check in checks:
            try:
                results.append(CheckResult(name, True, check(client, options)))
            except (_Failed, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                results.append(CheckResult(name, False, str(exc) or type(exc).__name__))
    return results


@click.command("smoke")
@click.option("--base-url", required=True, help="Public origin of the deployment to check.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds per request.")
@click.option("--expect-version", help="Image tag /api/health must report (the deployed TAG).")
@click.option("--username", help="Also log in as this user (password from SMOKE_PASSWORD).")
@click.option("--password", envvar="SMOKE_PASSWORD", hidden=True)
def smoke_command(
    base_url: str,
    timeout: float,
    expect_version: str | None,
    username: str | None,
    password: str | None,
) -> None:
    """Post-deploy smoke test: exits 0 only when every check passes."""
    if not base_url.startswith(("http://", "https://")):
        _fail("--base-url must start with http:// or https://")
    if username and not password:
        _fail("--username needs its password in SMOKE_PASSWORD")
    options = SmokeOptions(expect_version=expect_version, username=username, password=password)
    results = run_smoke(base_url, timeout=timeout, options=options)
    for result in results:
        click.echo(f"{'PASS' if result.ok else 'FAIL'}  {result.name:14}  {result.detail}")
    failed = sum(not r.ok for r in results)
    if failed:
        _fail(f"{failed} of {len(results)} smoke checks failed")
    click.echo(f"all {len(results)} smoke checks passed")


def _fail(message: str) -> NoReturn:
    click.echo(f"cortiware: {message}", err=True)
    sys.exit(1)
