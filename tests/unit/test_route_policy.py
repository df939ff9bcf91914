"""Unit tests of route policy declarations (`cortiware.route_policy`) and who reads them."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Litestar, Request, get, post
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from cortiware.app import create_app
from cortiware.errors import exception_handlers
from cortiware.middleware.input_guard import InputGuardMiddleware
from cortiware.route_policy import (
    PAGE,
    GroupName,
    Idempotency,
    InputCheck,
    RoutePolicy,
    declare,
    policy_of,
)
from cortiware.settings import Settings


class _Pages(Controller):
    path = "/pages"
    opt = PAGE

    @post("/form", opt=declare(errors={404: "No such form."}))
    async def form(self, request: Request[Any, Any, Any]) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @post("/open", opt=declare(input_check=InputCheck.FULL))
    async def strict(self, request: Request[Any, Any, Any]) -> dict[str, int]:
        return {"bytes": len(await request.body())}


@get("/api/things", sync_to_thread=False)
def things() -> list[str]:
    return []


def _handler(app: Litestar, method: str, path: str) -> Any:
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format == path:
            for handler in route.route_handlers:
                if method in handler.http_methods:
                    return handler
    raise AssertionError(f"no route {method} {path}")


def test_an_undeclared_route_gets_the_api_policy() -> None:
    """Without a declaration: CSRF, every input check, `default` group, optional key."""
    app = Litestar(route_handlers=[things])
    assert policy_of(_handler(app, "GET", "/api/things")) == RoutePolicy()
    assert policy_of(None) == RoutePolicy()


def test_declarations_merge_from_controller_to_handler() -> None:
    """A controller's declaration applies to its handlers; a handler's own entries win."""
    app = Litestar(route_handlers=[_Pages])
    form = policy_of(_handler(app, "POST", "/pages/form"))
    assert form.rate_limit is None
    assert form.idempotency is Idempotency.EXEMPT
    assert form.input_check is InputCheck.URL
    assert form.errors == {404: "No such form."}
    assert policy_of(_handler(app, "POST", "/pages/open")).input_check is InputCheck.FULL


async def test_input_guard_checks_what_the_route_declares() -> None:
    """A NUL in the body is refused where the route declares FULL, passed where URL only."""
    app = Litestar(
        route_handlers=[_Pages],
        middleware=[InputGuardMiddleware()],
        exception_handlers=exception_handlers,
    )
    async with AsyncTestClient(app) as client:
        page = await client.post("/pages/form", content=b"a\x00b")
        strict = await client.post("/pages/open", content=b"a\x00b")
        url = await client.post("/pages/form?q=%00", content=b"ab")
    assert page.status_code == 201
    assert strict.status_code == 400
    assert url.status_code == 400


def test_preflights_share_the_policy_of_their_path() -> None:
    """Litestar's generated OPTIONS handler of a webhook or onboarding path gets its policy."""
    app = create_app(Settings.from_env({}))
    stripe = policy_of(_handler(app, "OPTIONS", "/api/webhooks/stripe"))
    assert (stripe.csrf, stripe.rate_limit, stripe.input_check) == (False, None, InputCheck.NONE)
    verify = policy_of(_handler(app, "OPTIONS", "/api/onboarding/verify"))
    assert verify.rate_limit is GroupName.ONBOARDING
    plans = policy_of(_handler(app, "OPTIONS", "/api/provider/plans/{plan_id}"))
    assert plans.rate_limit is GroupName.DEFAULT
