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
from cortiware.health import PROBES, probe
from cortiware.middleware.pipeline import RequestPipeline
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


def test_no_stage_runs_on_the_probes_and_every_route_has_the_pipeline(
    make_settings: SettingsFactory,
) -> None:
    """The health probes (`PROBE`) give no stage work: their routes run without the
    pipeline (and so without a route middleware stack at all). Every other route has the
    pipeline, a route registered after the app was built included (a stage decides per
    route what to skip; no route can miss one by being added elsewhere)."""
    settings = make_settings()
    app = create_app(settings)
    app.register(other)
    probe_fns = {probe.fn for probe in PROBES}
    handlers = [handler for route in app.routes for handler in getattr(route, "route_handlers", ())]
    probes = [handler for handler in handlers if handler.fn in probe_fns]
    assert len(probes) == len(PROBES)
    assert all(pipeline_of(h) is not None for h in handlers if h.fn not in probe_fns)
    the_pipeline = pipeline_of(probes[0].__class__.__mro__[1].resolve_middleware(probes[0]))
    for handler in probes:
        assert isinstance(handler, probe)
        assert handler.resolve_middleware() == []
        # What the pipeline would run there, were it kept: nothing.
        assert the_pipeline is not None
        assert not the_pipeline.applies_to(handler)
        assert the_pipeline.chain(_sentinel_app, handler, ScopeType.HTTP) is _sentinel_app
        assert not handler.resolve_guards()
        assert not {"principal", "maybe_principal"} & set(handler.parsed_fn_signature.parameters)
    # Any other route of the service keeps at least the stages its policy asks for.
    plans = next(h for h in handlers if "/api/plans" in h.paths)
    assert pipeline_of(plans).chain(_sentinel_app, plans, ScopeType.HTTP) is not _sentinel_app  # type: ignore[union-attr]


async def _sentinel_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("never called")


def pipeline_of(handler_or_middleware: Any) -> RequestPipeline | None:
    """The `RequestPipeline` among a handler's route middleware (or a middleware list)."""
    middleware = (
        handler_or_middleware
        if isinstance(handler_or_middleware, list)
        else handler_or_middleware.resolve_middleware()
    )
    found = [m for m in middleware if isinstance(m, RequestPipeline)]
    return found[0] if found else None
