"""`cortiware smoke --base-url URL`: the post-deploy checks the runbooks call.

Each check is one HTTP request with a short timeout; the command exits 0 only when all pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

__all__ = ["CheckResult", "run_smoke"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one smoke check."""

    name: str
    ok: bool
    detail: str


Check = Callable[[httpx.Client], str]


def _live(client: httpx.Client) -> str:
    response = client.get("/api/health/live")
    _expect(response.status_code == 200 and response.json() == {"status": "ok"}, response)
    return "200 ok"


def _health(client: httpx.Client) -> str:
    response = client.get("/api/health")
    body = response.json()
    _expect(response.status_code == 200 and body.get("status") == "healthy", response)
    return f"healthy, version {body.get('version')}"


def _plans(client: httpx.Client) -> str:
    response = client.get("/api/plans")
    _expect(response.status_code == 200 and isinstance(response.json(), list), response)
    return f"{len(response.json())} active plan(s)"


def _problem_json(client: httpx.Client) -> str:
    response = client.get("/api/__smoke_not_found__")
    _expect(
        response.status_code == 404
        and response.headers.get("content-type", "").startswith("application/problem+json"),
        response,
    )
    return "404 is problem+json"


def _auth_required(client: httpx.Client) -> str:
    response = client.get("/api/provider/organizations")
    _expect(response.status_code == 401, response)
    return "provider API refuses anonymous callers"


def _openapi(client: httpx.Client) -> str:
    response = client.get("/api/docs/openapi.json")
    _expect(response.status_code == 200 and "paths" in response.json(), response)
    return f"{len(response.json()['paths'])} documented paths"


CHECKS: tuple[tuple[str, Check], ...] = (
    ("liveness", _live),
    ("readiness", _health),
    ("public plans", _plans),
    ("error format", _problem_json),
    ("authorization", _auth_required),
    ("openapi", _openapi),
)


class _Failed(Exception):
    pass


def _expect(condition: bool, response: httpx.Response) -> None:
    if not condition:
        raise _Failed(f"unexpected {response.status_code} {response.text[:120]!r}")


def run_smoke(base_url: str, *, timeout: float = 5.0) -> list[CheckResult]:
    """Run every check against `base_url` and return their results."""
    results: list[CheckResult] = []
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        for name, check in CHECKS:
            try:
                results.append(CheckResult(name, True, check(client)))
            except (_Failed, httpx.HTTPError, ValueError, KeyError) as exc:
                results.append(CheckResult(name, False, str(exc) or type(exc).__name__))
    return results
