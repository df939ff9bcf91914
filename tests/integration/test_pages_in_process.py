"""Pages call the domain services in-process: no HTTP sub-request, no token in the logs, and
the protections of the JSON routes (rate limits, form idempotency) still apply."""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app import create_app
from cortiware.billing.client import STRIPE_STATE_KEY
from cortiware.db.engine import create_engine
from cortiware.db.models import OnboardingInvite
from cortiware.logging import access_log
from cortiware.settings import Settings
from tests.conftest import SettingsFactory
from tests.integration.conftest import in_loop_client
from tests.support.auth import STAFF_PASSWORDS, create_owner, login_staff
from tests.support.stripe_fake import FakeStripe, fake_client

_FIELD = re.compile(r'name="(_csrf|_form_key)" value="([^"]*)"')


def _hidden(page: str) -> dict[str, str]:
    return dict(_FIELD.findall(page))


@pytest.fixture
def asgi_entries(app: Litestar, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of every request that enters `app`; any httpx transport call fails."""
    entries: list[str] = []
    handler = app.asgi_handler

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            entries.append(scope["path"])
        await handler(scope, receive, send)

    async def forbidden(*_: Any, **__: Any) -> httpx.Response:
        raise AssertionError("a page made an HTTP request")

    monkeypatch.setattr(app, "asgi_handler", counting)
    monkeypatch.setattr(httpx.ASGITransport, "handle_async_request", forbidden)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", forbidden)
    return entries


async def _new_invite(client: AsyncTestClient[Litestar]) -> str:
    """A fresh invite's token; the client is anonymous again afterwards."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    response = await client.post(
        "/api/provider/invites",
        json={"email": f"inproc-{uuid.uuid4().hex[:8]}@example.com", "org_name": "InProc"},
    )
    assert response.status_code == 201, response.text
    await client.post("/api/auth/logout")
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    token: str = response.json()["token"]
    return token


async def test_onboarding_page_makes_no_http_request(
    client: AsyncTestClient[Litestar], asgi_entries: list[str]
) -> None:
    """Rendering `/onboarding?token=…` and accepting it enter the app once each, with no
    HTTP request of any kind."""
    token = await _new_invite(client)
    asgi_entries.clear()
    form = await client.get("/onboarding", params={"token": token})
    assert form.status_code == 200, form.text
    assert asgi_entries == ["/onboarding"]
    accepted = await client.post(
        "/onboarding",
        data={**_hidden(form.text), "token": token, "name": "Pat",
              "password": "a-long-owner-password"},
        follow_redirects=False,
    )  # fmt: skip
    assert accepted.status_code == 303, accepted.text
    assert asgi_entries == ["/onboarding", "/onboarding"]


async def test_no_page_enters_the_app_twice(
    client: AsyncTestClient[Litestar], asgi_entries: list[str]
) -> None:
    """The login form, the provider dashboard and a provider form each enter the app once."""
    login = await client.post(
        "/login",
        data={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
        follow_redirects=False,
    )
    assert login.status_code == 303
    dashboard = await client.get("/provider/plans")
    assert dashboard.status_code == 200
    plan = await client.post(
        "/provider/plans",
        data={**_hidden(dashboard.text), "code": f"ip{uuid.uuid4().hex[:8]}", "name": "In"},
        follow_redirects=False,
    )
    assert plan.status_code == 303, plan.text
    assert asgi_entries == ["/login", "/provider/plans", "/provider/plans"]


async def _raw(
    app: Litestar, method: str, path: str, *, query: str = "", form: dict[str, str] | None = None
) -> tuple[int, str]:
    """One request straight into the ASGI app: no HTTP client, so nothing but the app logs."""
    body = httpx.QueryParams(form or {}).__str__().encode()
    headers = [(b"host", b"testserver.local"), (b"origin", b"http://testserver.local")]
    if form is not None:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": headers,
        "client": ("192.0.2.10", 1), "server": ("testserver.local", 80),
    }  # fmt: skip
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, b"".join(chunks).decode()


async def test_onboarding_token_never_reaches_the_logs(
    pg_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Neither the invite token nor its signature appears in any log output of rendering,
    accepting and re-opening the onboarding page."""
    app = create_app(pg_settings)
    async with in_loop_client(app) as http:
        login = await http.post(
            "/api/auth/login",
            json={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
        )
        invite = await http.post(
            "/api/provider/invites",
            json={"email": f"logs-{uuid.uuid4().hex[:8]}@example.com", "org_name": "Logs"},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
        assert invite.status_code == 201, invite.text
        token: str = invite.json()["token"]
        query = str(httpx.QueryParams({"token": token}))
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.DEBUG):
            status, page = await _raw(app, "GET", "/onboarding", query=query)
            assert status == 200, page
            fields = {**_hidden(page), "token": token, "name": "Pat",
                      "password": "a-long-owner-password"}  # fmt: skip
            status, page = await _raw(app, "POST", "/onboarding", form=fields)
            assert status == 303, page
            status, _ = await _raw(app, "GET", "/onboarding", query=query)
            assert status == 409
        access_log.flush()  # the access lines wait up to FLUSH_AFTER in their buffer
        captured = capsys.readouterr()
    output = "\n".join([caplog.text, captured.out, captured.err])
    assert "/onboarding" in output, "the requests were not logged: the check proves nothing"
    for needle in (token, query.removeprefix("token="), token.rsplit(".", 1)[-1]):
        assert needle not in output


async def test_onboarding_page_keeps_the_onboarding_rate_limit(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """The onboarding page counts against the `onboarding` limit, shared with the API."""
    settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        RATE_LIMIT_ONBOARDING="3/minute",
    )
    async with in_loop_client(create_app(settings), peer=("192.0.2.77", 1)) as http:
        assert (await http.get("/onboarding?token=bad")).status_code == 400
        assert (await http.get("/api/onboarding/verify?token=bad")).status_code == 400
        assert (await http.get("/onboarding?token=bad")).status_code == 400
        limited = await http.get("/onboarding?token=bad")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert 'role="alert"' in limited.text
        refused = await http.post("/onboarding", data={"token": "bad", "name": "x"})
        assert refused.status_code in (403, 429)  # no CSRF cookie: refused either way


async def test_login_page_and_api_share_the_auth_limit(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Wrong passwords on `POST /api/auth/login` use up the login form's limit too."""
    settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        RATE_LIMIT_AUTH="2/minute",
    )
    async with in_loop_client(create_app(settings), peer=("192.0.2.78", 1)) as http:
        wrong = {"username": "provider", "password": "wrong"}
        assert (await http.post("/api/auth/login", json=wrong)).status_code == 401
        assert (await http.post("/api/auth/login", json=wrong)).status_code == 401
        page = await http.post("/login", data=wrong)
        assert page.status_code == 429
        assert "Invalid username or password." not in page.text


async def test_double_submitted_form_acts_once(
    client: AsyncTestClient[Litestar], database_url: str
) -> None:
    """Posting one rendered invite form twice creates one invite and shows the same link;
    the same form key with other values is refused."""
    login = await client.post(
        "/login",
        data={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
        follow_redirects=False,
    )
    assert login.status_code == 303
    dashboard = await client.get("/provider/invites")
    email = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    form = {**_hidden(dashboard.text), "email": email, "org_name": "Twice Org"}
    first = await client.post("/provider/invites", data=form)
    second = await client.post("/provider/invites", data=form)
    assert first.status_code == second.status_code == 200  # each followed to the GET
    shown = r'id="invite-link" class="link" readonly value="([^"]+)"'
    links = [re.search(shown, r.text) for r in (first, second)]
    assert links[0] is not None
    assert links[1] is not None
    assert html.unescape(links[0].group(1)) == html.unescape(links[1].group(1))
    changed = await client.post("/provider/invites", data={**form, "org_name": "Other"})
    assert changed.status_code == 422

    engine = create_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            count = await session.scalar(
                select(func.count()).where(OnboardingInvite.email == email)
            )
    finally:
        await engine.dispose()
    assert count == 1


async def test_owner_portal_button_redirects_to_stripe(
    app: Litestar, client: AsyncTestClient[Litestar], pg_settings: Settings
) -> None:
    """The owner page's portal form opens a Billing Portal session through the billing
    service and answers 303 to Stripe; a resubmitted form reaches Stripe with the same key."""
    fake = FakeStripe()
    app.state[STRIPE_STATE_KEY] = fake_client(pg_settings, fake)
    owner = await create_owner(app)
    login = await client.post(
        "/login",
        data={"username": owner.email, "password": owner.password},
        follow_redirects=False,
    )
    assert login.headers["location"] == "/owner"
    page = await client.get("/owner")
    # The portal button's form: this session's CSRF token and one form key (as rendered).
    form = {"_csrf": _hidden(page.text)["_csrf"], "_form_key": uuid.uuid4().hex}
    first = await client.post("/owner/billing/portal", data=form, follow_redirects=False)
    second = await client.post("/owner/billing/portal", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"].startswith("https://")
    assert second.headers["location"] == first.headers["location"]  # replayed, not re-run
    assert len(fake.calls("POST", "/v1/billing_portal/sessions")) == 1


async def test_a_form_key_replays_only_within_its_session(
    client: AsyncTestClient[Litestar], database_url: str
) -> None:
    """A form key reused after logging out and in again is a new command, as the API's
    `Idempotency-Key` is scoped to the session too."""

    async def provider_form() -> dict[str, str]:
        login = await client.post(
            "/login",
            data={"username": "provider", "password": STAFF_PASSWORDS["provider"]},
            follow_redirects=False,
        )
        assert login.status_code == 303
        return _hidden((await client.get("/provider")).text)

    email = f"session-{uuid.uuid4().hex[:8]}@example.com"
    key = uuid.uuid4().hex
    fields = {"email": email, "org_name": "Session Org", "_form_key": key}
    first = await client.post("/provider/invites", data={**await provider_form(), **fields})
    assert first.status_code == 200, first.text
    await client.post("/logout", data={"_csrf": _hidden(first.text)["_csrf"]})
    client.cookies.clear()
    again = await client.post("/provider/invites", data={**await provider_form(), **fields})
    assert again.status_code == 200, again.text

    engine = create_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            count = await session.scalar(
                select(func.count()).where(OnboardingInvite.email == email)
            )
    finally:
        await engine.dispose()
    assert count == 2
