"""`RequestPipeline`: the service's request middleware chained once, run as one layer.

Litestar wraps each middleware in a closure that, on every request and for every layer,
checks the scope type, the route's exclusion key and path patterns before calling `handle`.
With the service's stacked layers (input guard, CSRF, sessions, rate limiting, idempotency;
the request context then was one too) that was about 6 % of the CPU of
`GET /api/health/live` in process (cProfile; docs/benchmarks.md). None of them uses
exclusions, so the pipeline chains their `handle` methods directly, once per route at
start-up, keeping only the scope-type check. Each stage
stays an ordinary `ASGIMiddleware`, usable (and tested) on its own.
"""

from __future__ import annotations

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestPipeline"]


class RequestPipeline(ASGIMiddleware):
    """Run `stages` in order (the first is outermost), as Litestar's `middleware` list would."""

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
        """The chain of stages around `app` (a route's handler app)."""
        for stage in reversed(self.stages):
            app = _bind(stage, app)
        return app

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Unused: `__call__` builds the chain (required by `ASGIMiddleware`)."""
        await self(next_app)(scope, receive, send)


def _bind(stage: ASGIMiddleware, next_app: ASGIApp) -> ASGIApp:
    scopes = frozenset(stage.scopes)
    handle = stage.handle

    async def run(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in scopes:
            await handle(scope, receive, send, next_app)
        else:
            await next_app(scope, receive, send)

    return run
