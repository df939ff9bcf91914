"""Send a problem+json response straight from an ASGI middleware."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.types import Receive, Scope, Send

from cortiware.errors import problem_response

__all__ = ["send_problem"]


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer the request with `problem_response(status, detail, headers=headers)`."""
    app = scope["litestar_app"]
    request = app.request_class(scope=scope, receive=receive)
    response = problem_response(status, detail, headers=headers)
    await response.to_asgi_response(None, request)(scope, receive, send)
