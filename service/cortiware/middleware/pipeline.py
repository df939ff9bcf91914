"""`RequestPipeline`: the service's request middleware chained once per route, run as one
layer, with only the stages that have work on that route.

Litestar wraps each middleware in a closure that, on every request and for every layer,
checks the scope type, the route's exclusion key and path patterns before calling `handle`.
With the service's stacked layers (input guard, CSRF, sessions, rate limiting, idempotency;
the request context then was one too) that was about 6 % of the CPU of
`GET /api/health/live` in process (cProfile; docs/benchmarks.md). None of them uses
exclusions, so the pipeline chains their `handle` methods directly.

A stage may also say, by an `applies_to(route_handler)` method, that a route gives it
nothing to do (CSRF and idempotency on a route without unsafe methods, rate limiting on a
route with no limit): such a stage is left out of that route's chain, instead of being
entered on every request to find out again. Litestar builds one middleware stack per route
handler without telling the middleware which, so each chain is built on its route's first
request, from the `route_handler` the router put into the scope, and kept. Each stage stays
an ordinary `ASGIMiddleware`, usable (and tested) on its own.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestPipeline"]


class RequestPipeline(ASGIMiddleware):
    """Run `stages` in order (the first is outermost), as Litestar's `middleware` list would,
    each only on the routes it `applies_to` (all, for a stage without that method)."""

    def __init__(self, *stages: ASGIMiddleware) -> None:
        for stage in stages:
            if (
                stage.exclude_path_pattern is not None
                or stage.exclude_opt_key is not None
                or stage.should_bypass_for_scope is not None
            ):
                raise ValueError(f"{type(stage).__name__}: exclusions are not supported here")
        self.stages = stages

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """`app` (one route handler's app) behind the chain of the stages its route needs."""
        chain: ASGIApp | None = None

        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            # Litestar builds a stack per route handler (HTTP or WebSocket, never both), so
            # the first request's handler and scope type are every request's.
            nonlocal chain
            if chain is None:
                chain = self.chain(app, scope.get("route_handler"), scope["type"])
            await chain(scope, receive, send)

        return run

    def applies_to(self, handler: Any) -> bool:
        """Whether any stage has work on `handler`'s route (HTTP requests).

        A route handler class may leave the pipeline out of its route middleware when this
        is False (`cortiware.health`'s probes): Litestar then also adds no route-level
        exception layer, which it puts under any route middleware (1 µs of a 38 µs
        `GET /api/health/live` in process, `benchmarks.inprocess`).
        """
        return any(_runs(stage, handler, ScopeType.HTTP) for stage in self.stages)

    def chain(self, app: ASGIApp, handler: Any, scope_type: str) -> ASGIApp:
        """`app` wrapped in the stages that apply to `handler` for scopes of `scope_type`."""
        for stage in reversed(self.stages):
            if _runs(stage, handler, scope_type):
                # `partial` rather than a closure: one Python frame less per stage.
                app = partial(stage.handle, next_app=app)
        return app

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Unused: `__call__` builds the chain (required by `ASGIMiddleware`)."""
        await self(next_app)(scope, receive, send)


def _runs(stage: ASGIMiddleware, handler: Any, scope_type: str) -> bool:
    """Whether `stage` runs for `scope_type` scopes on `handler`'s route (on every route
    when the handler is unknown or the stage has no `applies_to`)."""
    if scope_type not in stage.scopes:
        return False
    applies_to = getattr(stage, "applies_to", None)
    return handler is None or applies_to is None or bool(applies_to(handler))
