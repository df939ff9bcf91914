"""`RequestPipeline`: its stages run in the listed order, as separate Litestar middleware
would, each only for the scope types it declares."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.app import create_app
from cortiware.auth.wiring import auth_middleware
from cortiware.health import PROBES
from cortiware.middleware.input_guard import InputGuardMiddleware
from cortiware.middleware.pipeline import RequestPipeline
from cortiware.wiring import redis_middleware
from tests.conftest import SettingsFactory


class _Mark(ASGIMiddleware):
    def __init__(self, name: str, seen: list[str], scopes: tuple[ScopeType, ...]) -> None:
        self.name = name
        self.seen = seen
        self.scopes = scopes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        self.seen.append(f"{self.name}>")
        await next_app(scope, receive, send)
        self.seen.append(f"<{self.name}")


@get("/", sync_to_thread=False)
def index() -> str:
    return "ok"


def test_stages_nest_in_order_and_respect_their_scopes() -> None:
    """The first stage is outermost; a stage limited to WebSocket scopes is skipped on HTTP."""
    seen: list[str] = []
    http = (ScopeType.HTTP,)
    pipeline = RequestPipeline(
        _Mark("a", seen, http), _Mark("ws", seen, (ScopeType.WEBSOCKET,)), _Mark("b", seen, http)
    )
    with TestClient(Litestar([index], middleware=[pipeline])) as client:
        assert client.get("/").text == "ok"
    assert seen == ["a>", "b>", "<b", "<a"]


def test_a_stage_with_exclusions_is_refused() -> None:
    """Exclusion settings, which the pipeline does not apply, are refused at construction."""
    stage = _Mark("x", [], (ScopeType.HTTP,))
    stage.exclude_opt_key = "skip"
    with pytest.raises(ValueError, match="exclusions"):
        RequestPipeline(stage)


class _Only(_Mark):
    """A stage with work only on the routes whose handler is named in `names`."""

    def __init__(self, name: str, seen: list[str], names: set[str]) -> None:
        super().__init__(name, seen, (ScopeType.HTTP,))
        self.names = names

    def applies_to(self, handler: Any) -> bool:
        return handler.handler_name in self.names


@get("/other", sync_to_thread=False)
def other() -> str:
    return "other"


def test_a_stage_runs_only_on_the_routes_it_applies_to() -> None:
    """`applies_to(handler)` False leaves the stage out of that route's chain; other stages
    and other routes are unaffected, request after request."""
    seen: list[str] = []
    pipeline = RequestPipeline(_Mark("a", seen, (ScopeType.HTTP,)), _Only("b", seen, {"other"}))
    with TestClient(Litestar([index, other], middleware=[pipeline])) as client:
        for _ in range(2):
            assert client.get("/").text == "ok"
        assert seen == ["a>", "<a"] * 2
        seen.clear()
        assert client.get("/other").text == "other"
    assert seen == ["a>", "b>", "<b", "<a"]


def test_the_probes_outside_the_pipeline_miss_no_stage(make_settings: SettingsFactory) -> None:
    """The health probes are served outside the pipeline (`create_app`): no stage that can
    tell applies to them, and none reads the principal the session stage would give them."""
    settings = make_settings()
    stages = [
        InputGuardMiddleware(),
        *auth_middleware(settings),
        *redis_middleware(settings),
    ]
    app = create_app(settings)
    probe_fns = {probe.fn for probe in PROBES}
    served = [
        handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if handler.fn in probe_fns
    ]
    assert len(served) == len(PROBES)
    for handler in served:
        for stage in stages:
            applies_to = getattr(stage, "applies_to", None)
            if applies_to is not None:
                assert not applies_to(handler), (type(stage).__name__, handler.paths)
        assert not handler.resolve_guards()
        assert not {"principal", "maybe_principal"} & set(handler.parsed_fn_signature.parameters)
    # Served outside it (so without the exception layer under any route middleware either),
    # and the only routes that are: the probes and Litestar's OPTIONS beside them.
    probe_paths = {path for probe in PROBES for path in probe.paths}
    outside = {
        route.path
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if pipeline_of(handler) is None
    }
    assert outside == probe_paths


def pipeline_of(handler: Any) -> RequestPipeline | None:
    """The `RequestPipeline` among `handler`'s route middleware, if any."""
    found = [m for m in handler.resolve_middleware() if isinstance(m, RequestPipeline)]
    return found[0] if found else None
