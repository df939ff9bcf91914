"""HEAD for every GET route, and an `Allow` header that lists every method of the route
(RFC 9110 §9.3.2, §9.3.7, §15.5.6).

Litestar routes HEAD only to `@head` handlers; its generated OPTIONS handler lists the
methods of the route object it was made for, which is stale when several handlers of one
path are registered apart (`/login`: the page and the form post), and inherits its
controller's guards (401 to anonymous callers); its 405 answers list the methods that have
a handler. Here, without a second handler per route:

- `serve_every_method(app)` wraps the app's ASGI handler. A HEAD request to a path with a
  GET handler and no HEAD handler apart from it is routed as GET, through the same
  middleware, guards and handler (so with the same headers), on a copy of the scope: the
  server keeps seeing HEAD and sends no body, and no body byte is passed on here either.
  Route middleware therefore sees such a request as GET; the access log, which runs
  outside (`RequestContextMiddleware`), logs it as HEAD. An OPTIONS answer gets the `Allow`
  of every handler of its path, HEAD next to GET.
- `allow_head_on_405` (run on every response start around routing, so it sees the
  router's own 405 answers) adds HEAD to their `Allow` wherever GET is listed.

The role guards let Litestar's generated OPTIONS handler through
(`cortiware.auth.principal.require_roles`): all it says is the method list.
"""

from __future__ import annotations

from collections import defaultdict
from typing import cast

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException
from litestar.routes import HTTPRoute
from litestar.types import (
    ASGIApp,
    HTTPResponseStartEvent,
    HTTPScope,
    Message,
    Receive,
    Scope,
    Send,
)
from litestar.utils import normalize_path

__all__ = ["allow_head_on_405", "serve_every_method"]


def serve_every_method(app: Litestar) -> None:
    """Serve HEAD on every GET route and complete `Allow` on OPTIONS (call after routing)."""
    app.asgi_handler = _EveryMethod(app.asgi_handler, app)


def _with_head(methods: set[str]) -> str:
    return ", ".join(sorted(methods | {"HEAD"} if "GET" in methods else methods))


class _EveryMethod:
    """ASGI: HEAD and OPTIONS as described above; every other request passes untouched."""

    __slots__ = ("allow", "app", "litestar")

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.litestar = litestar
        methods: dict[str, set[str]] = defaultdict(set)
        for route in litestar.routes:
            if isinstance(route, HTTPRoute):
                methods[route.path_format] |= route.methods
        self.allow = {path: _with_head(found) for path, found in methods.items()}
        """Route path (as the router puts it in `scope["path_template"]`) → `Allow` value."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")  # None on websockets
        if method == "HEAD":
            if not self._has_get_only(scope):
                await self.app(scope, receive, _bodiless(send))
                return
            as_get = cast("HTTPScope", {**scope, "method": "GET"})
            try:
                await self.app(as_get, receive, _bodiless(send))
            finally:
                # What routing found, for the layers outside (metrics name the route group).
                if "route_handler" in as_get:
                    scope["route_handler"] = as_get["route_handler"]
        elif method == "OPTIONS":
            await self.app(scope, receive, self._allowing(scope, send))
        else:
            await self.app(scope, receive, send)

    def _has_get_only(self, scope: Scope) -> bool:
        """Whether the path has a GET handler and no HEAD handler apart from it."""
        # As Litestar's router finds the route (its lookups are cached per path and method).
        route = self.litestar.asgi_router.handle_routing
        path = scope["path"]
        if root_path := scope.get("root_path", ""):
            path = path.split(root_path, maxsplit=1)[-1]
        path = normalize_path(path)
        try:
            route(path=path, method="GET")
        except HTTPException:
            return False  # no such path, or no GET: the router's own 404 or 405
        try:
            route(path=path, method="HEAD")
        except HTTPException:
            return True
        return False  # its own HEAD handler (static files)

    def _allowing(self, scope: Scope, send: Send) -> Send:
        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                allow = self.allow.get(str(scope.get("path_template", "")))
                if allow is not None:
                    MutableScopeHeaders.from_message(message)["Allow"] = allow
            await send(message)

        return send_with_allow


def _bodiless(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return  # the rest of a streamed body: nothing to send
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return send_headers_only


def allow_head_on_405(message: HTTPResponseStartEvent, _scope: Scope) -> None:
    """HEAD in the `Allow` of a 405 response's start message wherever GET is (run around
    routing by `RequestContextMiddleware`, so it sees the router's own 405s)."""
    if message["status"] != 405:
        return
    headers = MutableScopeHeaders.from_message(message)
    if allow := headers.get("allow"):
        headers["Allow"] = _with_head({m.strip().upper() for m in allow.split(",") if m.strip()})
