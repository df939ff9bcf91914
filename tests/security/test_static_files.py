"""`/static` never tells a client where the service is installed or what it looked for."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar

import cortiware
from tests.integration.conftest import in_loop_client

PACKAGE_DIR = str(cortiware.__file__).rsplit("/", 1)[0]


async def _raw_get(app: Litestar, raw_path: bytes) -> tuple[int, bytes]:
    """Send `raw_path` unnormalised (a client library would resolve `.` and `..` itself)."""
    path = raw_path.decode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.replace("%2e", ".").replace("%2E", "."),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver.local")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver.local", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]  # a plain dict scope
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/static/.",
        b"/static/%2e",
        b"/static/..",
        b"/static/./",
        b"/static/nope.css",
        b"/static/a/b",
    ],
)
async def test_static_404_names_no_path(app: Litestar, raw_path: bytes) -> None:
    """A missing or directory path under /static answers 404 naming no file-system path."""
    async with in_loop_client(app):
        status, body = await _raw_get(app, raw_path)
    assert status == 404
    # The HTML error page links its own stylesheet and icon under /static: not an echo.
    text = re.sub(r'(href|src)="/static/[^"]*"', "", body.decode())
    assert PACKAGE_DIR not in text
    assert "static" not in text
    assert "nope.css" not in text
