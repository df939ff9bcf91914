"""The API reference is generated from the service, committed alongside it, and tells the truth.

The layer checks walk the application's route table and recompute, from the code the
middleware and guards act on, which statuses and headers each operation must document.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from click.testing import CliRunner
from litestar import Litestar
from litestar.exceptions import HTTPException, ValidationException
from litestar.routes import HTTPRoute
from litestar.testing import RequestFactory, TestClient

from cortiware.app import create_app
from cortiware.auth.csrf import UNSAFE_METHODS
from cortiware.cli import main
from cortiware.errors import PROBLEM_JSON, Problem, exception_handlers, problem_response
from cortiware.openapi import render_openapi
from cortiware.portals.accountant import AccountantController
from cortiware.portals.service import AccountantReports
from cortiware.route_policy import policy_of
from cortiware.settings import Settings
from tests.conftest import SettingsFactory

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@cache
def _app() -> Litestar:
    return create_app(Settings.from_env({}))


def _rendered() -> str:
    return render_openapi(create_app(Settings.from_env({})))


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_rendered())
    return document


def _operations() -> list[tuple[str, str, Any, dict[str, Any]]]:
    """(method, path, handler, documented operation) for every route in the document."""
    paths = _document()["paths"]
    found = []
    for route in _app().routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                operation = paths[route.path_format].get(method.lower())
                if operation is not None:
                    found.append((method, route.path_format, handler, operation))
    return found


def _guarded(handler: Any) -> bool:
    guards = [g for layer in handler.ownership_layers for g in layer.guards or []]
    return any(hasattr(g, "allowed_roles") for g in guards)


def _headers(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}


def test_committed_openapi_document_matches_the_routes() -> None:
    """docs/openapi.json equals what the application generates (run `make openapi`)."""
    assert COMMITTED.read_text(encoding="utf-8") == _rendered(), "run `make openapi`"


def test_openapi_command_writes_the_document(tmp_path: Path) -> None:
    """`cortiware openapi PATH` (what `make openapi` runs) writes the committed document."""
    written = tmp_path / "openapi.json"
    result = CliRunner().invoke(main, ["openapi", str(written)])
    assert result.exit_code == 0, result.output
    assert written.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")


def test_served_document_is_the_completed_one(make_settings: SettingsFactory) -> None:
    """`/api/docs/openapi.json` serves the document with the layers' statuses and headers."""
    with TestClient(create_app(make_settings())) as client:
        served = client.get("/api/docs/openapi.json").json()
    assert served == json.loads(_rendered())


def test_every_contract_route_is_documented() -> None:
    """Every endpoint the contract names appears in the generated document."""
    paths = _document()["paths"]
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


def test_every_error_response_is_problem_json() -> None:
    """Each documented 4xx/5xx is `application/problem+json` with the `Problem` schema."""
    for method, path, _, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) < 400 or (path.startswith("/api/health") and status == "503"):
                continue  # health's 503 is its own `unhealthy` body
            assert response["content"] == {PROBLEM_JSON: {"schema": _PROBLEM_REF}}, (
                method,
                path,
                status,
            )


def test_statuses_of_the_layers_are_documented_on_every_operation() -> None:
    """500 everywhere; 429 where rate limited; CSRF, idempotency and size errors on unsafe
    routes; 401/403 on guarded ones; each handler's own errors."""
    assert len(_operations()) >= 30
    for method, path, handler, operation in _operations():
        documented = {int(s) for s in operation["responses"]}
        policy = policy_of(handler)
        expected = {500, *policy.errors}
        if policy.rate_limit is not None:
            expected.add(429)
        if method in UNSAFE_METHODS:
            expected.add(413)
            if not path.startswith("/api/webhooks/"):
                expected |= {400, 403, 409, 422, 503}
        if _guarded(handler):
            expected |= {401, 403}
        assert expected <= documented, (method, path, sorted(expected - documented))


def test_declared_handler_errors_are_documented_with_their_reason() -> None:
    """Each error a route declares (`declare(errors=...)`) is documented with its reason."""
    declared = 0
    for method, path, handler, operation in _operations():
        for status, reason in policy_of(handler).errors.items():
            declared += 1
            assert reason in operation["responses"][str(status)]["description"], (method, path)
    assert declared >= 40  # what the handlers raise themselves, across the API


def test_request_headers_of_the_contract_are_declared() -> None:
    """`Idempotency-Key` (required on accept), `X-CSRF-Token` and webhook signatures."""
    for method, path, _, operation in _operations():
        headers = _headers(operation)
        if method in UNSAFE_METHODS and not path.startswith("/api/webhooks/"):
            required = (method, path) == ("POST", "/api/onboarding/accept")
            assert headers["Idempotency-Key"]["required"] is required, (method, path)
            assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255
            assert not headers["X-CSRF-Token"].get("required", False), (method, path)
        else:
            assert "Idempotency-Key" not in headers
            assert "X-CSRF-Token" not in headers
    paths = _document()["paths"]
    stripe = _headers(paths["/api/webhooks/stripe"]["post"])
    federation = _headers(paths["/api/webhooks/federation"]["post"])
    assert stripe["Stripe-Signature"]["required"]
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert federation[name]["required"], name


def test_response_headers_of_the_contract_are_declared() -> None:
    """`X-Request-ID` everywhere; `RateLimit*` where limited, `Retry-After` on 429 (and on
    idempotency's 409/503); `Idempotent-Replayed` where a key is honoured."""
    components = _document()["components"]["headers"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed"} <= set(
        components
    )
    for method, path, handler, operation in _operations():
        limited = policy_of(handler).rate_limit is not None
        idempotent = method in UNSAFE_METHODS and not path.startswith("/api/webhooks/")
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, (method, path, status)
            assert ("RateLimit" in headers) is limited, (method, path, status)
            assert ("RateLimit-Policy" in headers) is limited, (method, path, status)
            if status == "429":
                assert headers["Retry-After"]["required"], (method, path)
            if idempotent and status in ("409", "503"):
                assert "Retry-After" in headers, (method, path, status)
            if idempotent and int(status) < 500:
                assert "Idempotent-Replayed" in headers, (method, path, status)


def test_no_content_response_declares_no_body() -> None:
    """A 204 (logout, deletes) documents no content, not a JSON `null`."""
    for method, path, _, operation in _operations():
        if "204" in operation["responses"]:
            assert "content" not in operation["responses"]["204"], (method, path)


def test_problem_schema_describes_what_the_service_sends() -> None:
    """Problem bodies of a plain error, a validation 400 and a 500 decode as `Problem`."""
    request = RequestFactory().get("/api/plans")
    bodies = [
        problem_response(409, "Taken.").content,
        exception_handlers[HTTPException](
            request, ValidationException(extra=[{"key": "x", "message": "bad", "source": "body"}])
        ).content,
        exception_handlers[Exception](request, RuntimeError("boom")).content,
    ]
    for body in bodies:
        problem = msgspec.convert(body, Problem)
        assert problem.status in (400, 409, 500)
    schema = _document()["components"]["schemas"]["Problem"]
    assert set(schema["required"]) == {"type", "title", "status", "detail"}
    assert {"instance", "request_id", "errors"} <= set(schema["properties"])


async def test_csv_export_is_documented_and_sent_as_text_csv() -> None:
    """The CSV export is documented as `text/csv` and sent with one charset parameter."""
    documented = _document()["paths"]["/api/accountant/subscriptions.csv"]["get"]
    assert list(documented["responses"]["200"]["content"]) == ["text/csv"]

    class NoRows:
        async def scalars(self, _: object) -> list[object]:
            return []

    reports = AccountantReports(session=NoRows())  # type: ignore[arg-type]
    response = await AccountantController.subscriptions_csv.fn(None, reports=reports)
    headers = dict(response.to_asgi_response(None, RequestFactory().get("/")).encode_headers())
    assert headers[b"content-type"] == b"text/csv; charset=utf-8"


def test_bodies_that_refuse_unknown_fields_say_so() -> None:
    """A body schema whose struct forbids unknown fields (answered 400) declares
    `additionalProperties: false`, so clients and fuzzers know."""
    schemas = json.loads(_rendered())["components"]["schemas"]
    for name in ("LoginBody", "InviteIn", "AcceptIn", "PlanIn", "CouponIn", "Retention"):
        assert schemas[name]["additionalProperties"] is False, name
