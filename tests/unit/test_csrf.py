"""CSRF middleware on a minimal app: origin, fetch metadata, session-bound token, exemptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.testing import AsyncTestClient

from cortiware.auth.cookies import csrf_token
from cortiware.auth.csrf import CSRFMiddleware
from cortiware.auth.middleware import SessionMiddleware
from cortiware.auth.principal import Principal, Role
from cortiware.auth.sessions import session_store_of
from cortiware.errors import exception_handlers
from cortiware.route_policy import SIGNED_WEBHOOK
from cortiware.settings import Settings
from tests.conftest import SettingsFactory

ORIGIN = "http://testserver.local"


@post("/api/things", status_code=201)
async def create_thing() -> dict[str, str]:
    """A state-changing endpoint."""
    return {"ok": "yes"}


@post("/pages/form", status_code=200)
async def submit_form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A form endpoint that reads its fields after the middleware did."""
    return dict((await request.form()).items())


@get("/api/things")
async def list_things() -> list[str]:
    """A safe endpoint."""
    return []


@post("/api/webhooks/test", opt=SIGNED_WEBHOOK)
async def webhook() -> dict[str, str]:
    """A webhook endpoint."""
    return {"received": "yes"}


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    """Test settings (BASE_URL http://testserver.local)."""
    return make_settings()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of a minimal app with the CSRF and session middleware."""
    app = Litestar(
        route_handlers=[create_thing, submit_form, list_things, webhook],
        middleware=[CSRFMiddleware(settings), SessionMiddleware(settings)],
        state=State({"settings": settings}),
        exception_handlers=exception_handlers,
    )
    async with AsyncTestClient(app=app, base_url=ORIGIN) as test_client:
        yield test_client


async def _session(client: AsyncTestClient[Litestar]) -> str:
    session_id = await session_store_of(client.app).create(
        Principal(role=Role.PROVIDER, username="provider")
    )
    client.cookies.set("cw_session", session_id)
    return session_id


async def test_anonymous_same_origin_post_passes(client: AsyncTestClient[Litestar]) -> None:
    """Without a session cookie no token is needed."""
    assert (await client.post("/api/things", headers={"Origin": ORIGIN})).status_code == 201


async def test_cross_site_origin_is_refused_without_session(
    client: AsyncTestClient[Litestar],
) -> None:
    """A foreign `Origin` on an unsafe request is 403 problem+json even when anonymous."""
    response = await client.post("/api/things", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_null_origin_is_refused(client: AsyncTestClient[Litestar]) -> None:
    """`Origin: null` (sandboxed frames, data: URLs) is not the service's origin."""
    assert (await client.post("/api/things", headers={"Origin": "null"})).status_code == 403


async def test_null_origin_cross_site_is_refused(client: AsyncTestClient[Litestar]) -> None:
    """`Origin: null` from another site (`Sec-Fetch-Site: cross-site` or `same-site`) is 403."""
    for site in ("cross-site", "same-site", "none"):
        headers = {"Origin": "null", "Sec-Fetch-Site": site}
        assert (await client.post("/api/things", headers=headers)).status_code == 403


async def test_null_origin_of_a_same_origin_form_passes(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """`Origin: null` with `Sec-Fetch-Site: same-origin` (the browser vouching for its own
    form, as Chromium sends under `Referrer-Policy: no-referrer`) passes; the token is still
    required."""
    session_id = await _session(client)
    same_origin_null = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/api/things", headers=same_origin_null)).status_code == 403
    token = csrf_token(settings.session_secret, session_id)
    response = await client.post("/api/things", headers={**same_origin_null, "X-CSRF-Token": token})
    assert response.status_code == 201


DEV = {"APP_ENV": "development"}
LOOPBACK = {"APP_ENV": "development", "BASE_URL": "http://127.0.0.1:8123"}


@pytest.mark.parametrize(
    ("overrides", "host", "origin", "expected"),
    [
        ({**DEV, "BASE_URL": None}, "dev.local:8123", "dev.local:8123", 201),
        ({**DEV, "BASE_URL": None}, "dev.local:8123", "evil.example", 403),
        (DEV, "dev.local:8123", "dev.local:8123", 403),
        ({"BASE_URL": None}, "dev.local:8123", "dev.local:8123", 403),
        (LOOPBACK, "localhost:8123", "localhost:8123", 201),
        (LOOPBACK, "localhost:9999", "localhost:9999", 403),
        (LOOPBACK, "dev.local:8123", "dev.local:8123", 403),
        (LOOPBACK, "localhost:8123", "evil.example", 403),
        ({"BASE_URL": "http://127.0.0.1:8123"}, "localhost:8123", "localhost:8123", 403),
    ],
)
async def test_development_origin_follows_the_served_host(
    make_settings: SettingsFactory,
    overrides: dict[str, str | None],
    host: str,
    origin: str,
    expected: int,
) -> None:
    """In development without BASE_URL the origin the browser sent the form to (its Host)
    is the service's own; with a loopback BASE_URL, its loopback aliases on that port too;
    otherwise, and outside development, only BASE_URL's origin is."""
    settings = make_settings(**overrides)
    app = Litestar(
        route_handlers=[create_thing],
        middleware=[CSRFMiddleware(settings)],
        state=State({"settings": settings}),
        exception_handlers=exception_handlers,
    )
    async with AsyncTestClient(app=app, base_url="http://dev.local:8123") as client:
        headers = {"Origin": f"http://{origin}", "Host": host, "Sec-Fetch-Site": "same-origin"}
        assert (await client.post("/api/things", headers=headers)).status_code == expected


async def test_sec_fetch_site_cross_site_is_refused(client: AsyncTestClient[Litestar]) -> None:
    """`Sec-Fetch-Site: cross-site` on an unsafe request is 403."""
    response = await client.post("/api/things", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


async def test_safe_methods_are_not_checked(client: AsyncTestClient[Litestar]) -> None:
    """GET passes whatever its Origin and fetch metadata."""
    response = await client.get(
        "/api/things", headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 200


async def test_session_without_token_is_refused(client: AsyncTestClient[Litestar]) -> None:
    """With a session cookie, an unsafe request without the token is 403."""
    await _session(client)
    assert (await client.post("/api/things")).status_code == 403


async def test_session_with_right_header_token_passes(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """The HMAC of the session id in `X-CSRF-Token` lets the request through."""
    session_id = await _session(client)
    token = csrf_token(settings.session_secret, session_id)
    response = await client.post("/api/things", headers={"X-CSRF-Token": token})
    assert response.status_code == 201


async def test_token_of_another_session_is_refused(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """A valid token minted for a different session does not work for this one."""
    other = await session_store_of(client.app).create(Principal(Role.OWNER, "x@example.com"))
    await _session(client)
    token = csrf_token(settings.session_secret, other)
    assert (await client.post("/api/things", headers={"X-CSRF-Token": token})).status_code == 403


async def test_form_field_token_passes_and_form_stays_readable(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """An HTML form's `_csrf` field is accepted and the handler still reads the form."""
    session_id = await _session(client)
    token = csrf_token(settings.session_secret, session_id)
    response = await client.post("/pages/form", data={"_csrf": token, "name": "Acme"})
    assert response.status_code == 200
    assert response.json() == {"_csrf": token, "name": "Acme"}


async def test_form_with_wrong_token_is_refused(client: AsyncTestClient[Litestar]) -> None:
    """A form carrying a wrong `_csrf` is 403."""
    await _session(client)
    response = await client.post("/pages/form", data={"_csrf": "0" * 64, "name": "Acme"})
    assert response.status_code == 403


async def test_webhooks_are_exempt(client: AsyncTestClient[Litestar]) -> None:
    """A route declaring `SIGNED_WEBHOOK` skips every CSRF rule, session cookie and foreign
    origin included."""
    await _session(client)
    response = await client.post(
        "/api/webhooks/test",
        headers={"Origin": "https://stripe.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 201


def test_token_is_bound_to_session_and_secret() -> None:
    """The token differs per session id and per secret, and is stable for both fixed."""
    assert csrf_token("a" * 32, "s1") == csrf_token("a" * 32, "s1")
    assert csrf_token("a" * 32, "s1") != csrf_token("a" * 32, "s2")
    assert csrf_token("a" * 32, "s1") != csrf_token("b" * 32, "s1")


def test_secure_settings_use_host_prefixed_cookies(make_settings: SettingsFactory) -> None:
    """With secure cookies both cookie names carry the `__Host-` prefix."""
    from cortiware.auth.cookies import CookieNames, session_cookies

    settings = make_settings()
    secure = Settings(**{**settings.__dict__, "app_env": settings.app_env.__class__("staging")})
    names = CookieNames.for_settings(secure)
    assert (names.session, names.csrf) == ("__Host-cw_session", "__Host-cw_csrf")
    session, csrf = session_cookies(secure, "sid")
    assert session.secure
    assert session.httponly
    assert session.path == "/"
    assert session.domain is None
    assert csrf.secure
    assert not csrf.httponly
