"""Every error the service produces is problem+json (contract §3), with no internals."""

from __future__ import annotations

import json
from collections.abc import Iterator

import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from cortiware.app import create_app
from tests.conftest import SettingsFactory


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """A strict request body."""

    name: str


@post("/api/_test/echo", sync_to_thread=False)
def echo(data: JSONBody[Body]) -> dict[str, str]:
    """Echo the name."""
    return {"name": data.name}


@post("/api/_test/boom", sync_to_thread=False)
def boom() -> None:
    """Fail with an internal error carrying sensitive text."""
    raise RuntimeError("password=hunter2 SELECT * FROM owners")


@pytest.fixture
def client(make_settings: SettingsFactory) -> Iterator[TestClient[Litestar]]:
    """The app with two extra test routes, on SQLite (migrations not needed here)."""
    app = create_app(make_settings())
    app.register(echo)
    app.register(boom)
    with TestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


def _is_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


def test_unknown_route_is_404_problem(client: TestClient[Litestar]) -> None:
    """An unknown path answers 404 problem+json."""
    _is_problem(client.get("/api/nope"), 404)


def test_wrong_method_is_405_problem(client: TestClient[Litestar]) -> None:
    """A known path with the wrong method answers 405 problem+json."""
    _is_problem(client.delete("/api/health/live"), 405)


def test_body_over_one_mebibyte_is_413(client: TestClient[Litestar]) -> None:
    """A body over 1 MiB is refused with 413 problem+json."""
    payload = json.dumps({"name": "x" * (1024 * 1024 + 10)})
    response = client.post(
        "/api/_test/echo", content=payload, headers={"content-type": "application/json"}
    )
    _is_problem(response, 413)


def test_malformed_json_is_400(client: TestClient[Litestar]) -> None:
    """Malformed JSON is 400 problem+json."""
    response = client.post(
        "/api/_test/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    _is_problem(response, 400)


def test_unknown_field_is_400(client: TestClient[Litestar]) -> None:
    """A body with an unknown field is 400 problem+json naming no value."""
    body = _is_problem(client.post("/api/_test/echo", json={"name": "a", "secretx": "zz9"}), 400)
    assert "zz9" not in json.dumps(body)


def test_valid_body_is_accepted(client: TestClient[Litestar]) -> None:
    """A body matching the schema is accepted (the strict parsing does not over-refuse)."""
    assert client.post("/api/_test/echo", json={"name": "a"}).json() == {"name": "a"}


def test_unhandled_exception_is_500_with_request_id_only(client: TestClient[Litestar]) -> None:
    """An unhandled exception is 500 problem+json with a request id and no internals."""
    response = client.post("/api/_test/boom", headers={"X-Request-ID": "req-123"})
    body = _is_problem(response, 500)
    assert body["request_id"] == "req-123"
    assert response.headers["x-request-id"] == "req-123"
    text = response.text
    assert "hunter2" not in text
    assert "SELECT" not in text
    assert "Traceback" not in text


def test_unsafe_request_id_is_replaced(client: TestClient[Litestar]) -> None:
    """A caller's request id with unsafe characters is replaced by a generated one."""
    response = client.get("/api/health/live", headers={"X-Request-ID": "bad id\nwith newline"})
    assert response.headers["x-request-id"] != "bad id\nwith newline"
    assert len(response.headers["x-request-id"]) == 32
