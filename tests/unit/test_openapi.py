"""The API reference is generated from the service and committed alongside it."""

from __future__ import annotations

from pathlib import Path

from cortiware.openapi import render_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_document_matches_the_routes() -> None:
    """docs/openapi.json equals what the application generates (run `make openapi`)."""
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(), "run `make openapi`"


def test_every_contract_route_is_documented() -> None:
    """Every endpoint the contract names appears in the generated document."""
    import json

    paths = json.loads(render_openapi())["paths"]
    for path in (
        "/api/auth/login",
        "/api/provider/invites",
        "/api/onboarding/verify",
        "/api/onboarding/accept",
        "/api/plans",
        "/api/provider/audit",
        "/api/webhooks/stripe",
        "/api/health",
        "/api/accountant/subscriptions.csv",
        "/api/developer/diagnostics",
    ):
        assert path in paths, path
