"""`RequestPipeline`: its stages run in the listed order, as separate Litestar middleware
would, each only for the scope types it declares."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.middleware.pipeline import RequestPipeline


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
