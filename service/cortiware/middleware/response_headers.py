"""Headers every `/api/` response carries, whichever layer answered it.

- `X-Content-Type-Options: nosniff`: a browser never reinterprets a JSON or problem body
  as HTML or script.
- `Cache-Control: no-store` unless the handler chose its own caching: API answers hold
  session data (the caller's organization, audit rows with addresses and user agents,
  invite tokens), which no browser or shared cache may keep.
"""

from __future__ import annotations

from typing import Final

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

__all__ = ["api_response_headers"]

_API_PREFIX: Final = "/api/"


async def api_response_headers(message: Message, scope: Scope) -> None:
    """A Litestar `before_send` hook: add the headers to every `/api/` response start.

    A hook rather than a middleware: it also sees what no middleware does, such as the
    router's own 404 and 405 answers.
    """
    if message["type"] != "http.response.start":
        return
    if not str(scope.get("path", "")).startswith(_API_PREFIX):
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["X-Content-Type-Options"] = "nosniff"
    if "cache-control" not in headers:
        headers["Cache-Control"] = "no-store"
