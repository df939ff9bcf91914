"""Headers every `/api/` response carries, whichever layer answered it.

- `X-Content-Type-Options: nosniff`: a browser never reinterprets a JSON or problem body
  as HTML or script.
- `Cache-Control: no-store` unless the handler chose its own caching: API answers hold
  session data (the caller's organization, audit rows with addresses and user agents,
  invite tokens), which no browser or shared cache may keep.
"""

from __future__ import annotations

from typing import Final

from litestar.types import HTTPResponseStartEvent, Scope

__all__ = ["api_response_headers"]

_API_PREFIX: Final = "/api/"
_NOSNIFF: Final = (b"x-content-type-options", b"nosniff")
_NO_STORE: Final = (b"cache-control", b"no-store")


def api_response_headers(message: HTTPResponseStartEvent, scope: Scope) -> None:
    """Add the headers to a `/api/` response's start message (its `headers` a list, edited
    in place).

    Run by `RequestContextMiddleware` around routing (`create_app`), so it also sees what no
    route-level middleware does, such as the router's own 404 and 405 answers.
    """
    if not str(scope.get("path", "")).startswith(_API_PREFIX):
        return
    # Raw pairs rather than `MutableScopeHeaders` (which re-parses the list per access): this
    # runs on every answer. The list is the request's own (`RequestContextMiddleware`).
    headers: list[tuple[bytes, bytes]] = message["headers"]  # type: ignore[assignment]
    no_store = True
    for i in range(len(headers) - 1, -1, -1):
        name = headers[i][0].lower()
        if name == _NOSNIFF[0]:
            del headers[i]
        elif name == _NO_STORE[0]:
            no_store = False
    headers.append(_NOSNIFF)
    if no_store:
        headers.append(_NO_STORE)
