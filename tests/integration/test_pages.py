"""The pages render and their forms submit, over HTTP, on PostgreSQL and Redis."""

from __future__ import annotations

import html
import re
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app import create_app
from cortiware.db.engine import create_engine
from cortiware.db.models import AuditEntry
from cortiware.seed import seed
from tests.conftest import SettingsFactory
from tests.integration.conftest import in_loop_client
from tests.support.auth import STAFF_PASSWORDS, create_owner

_FIELD = re.compile(r'name="(_csrf|_form_key)" value="([^"]*)"')


def _hidden(page: str) -> dict[str, str]:
    """The `_csrf` and `_form_key` hidden fields of the first form on `page`."""
    return dict(_FIELD.findall(page))


async def _page_login(client: AsyncTestClient[Litestar], username: str, password: str) -> str:
    response = await client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def test_pages_redirect_to_login_without_session(client: AsyncTestClient[Litestar]) -> None:
    """`/provider`, `/owner` and `/account` send an anonymous visitor to `/login`."""
    for path in ("/provider", "/owner", "/account"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


async def test_login_page_renders_an_accessible_form(client: AsyncTestClient[Litestar]) -> None:
    """The login page is HTML with labelled fields, the stylesheet and a strict CSP."""
    response = await client.get("/login")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<label for="username">' in page
    assert '<label for="password">' in page
    assert 'href="/static/site.css"' in page
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    css = await client.get("/static/site.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]


async def test_login_form_redirects_by_role(client: AsyncTestClient[Litestar]) -> None:
    """Provider lands on /provider, developer on /developer, accountant on /accountant, and
    `/` (and `/login` again) leads each of them back there."""
    assert await _page_login(client, "provider", STAFF_PASSWORDS["provider"]) == "/provider"
    homes = {"developer": ("/developer", "Diagnostics"), "accountant": ("/accountant", "Revenue")}
    for role, (home, heading) in homes.items():
        client.cookies.clear()
        assert await _page_login(client, role, STAFF_PASSWORDS[role]) == home
        page = await client.get(home)
        assert page.status_code == 200
        assert f"<h1>{heading}</h1>" in page.text
        for path in ("/", "/login"):
            again = await client.get(path, follow_redirects=False)
            assert (again.status_code, again.headers["location"]) == (303, home)
        account = await client.get("/account")
        assert f"Role: <strong>{role}</strong>" in account.text
    client.cookies.clear()
    anonymous = await client.get("/", follow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")


async def test_login_form_failure_shows_one_message(client: AsyncTestClient[Litestar]) -> None:
    """Wrong credentials re-render the form with the generic error and no session."""
    response = await client.post("/login", data={"username": "provider", "password": "nope"})
    assert response.status_code == 401
    assert "Invalid username or password." in response.text
    assert client.cookies.get("cw_session") is None


async def test_login_form_honours_a_local_next_only(client: AsyncTestClient[Litestar]) -> None:
    """`next` is followed when it is a local path and ignored when it points off-site."""
    response = await client.post(
        "/login",
        data={"username": "provider", "password": STAFF_PASSWORDS["provider"], "next": "//x.io"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/provider"


async def test_provider_forms_submit(client: AsyncTestClient[Litestar], database_url: str) -> None:
    """Each provider form posts through the API and the dashboard shows the result."""
    # The monetization config is one global row: start from the seeded one, as other tests do.
    engine = create_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await seed(session)
    finally:
        await engine.dispose()
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    plans = await client.get("/provider/plans")
    assert plans.status_code == 200
    code = f"pg{uuid.uuid4().hex[:8]}"

    async def submit(path: str, page: str, fields: dict[str, str], back: str) -> str:
        """Post the form (Post/Redirect/Get: 303 back to `back`) and return the next page."""
        sent = await client.post(path, data={**_hidden(page), **fields}, follow_redirects=False)
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"] == back
        shown = await client.get(back)
        assert shown.status_code == 200
        return shown.text

    plan = await submit("/provider/plans", plans.text,
                        {"code": code, "name": "Page Plan", "description": ""},
                        "/provider/plans")  # fmt: skip
    assert "Plan Page Plan created." in plan
    plan_id = re.search(rf'<option value="([0-9a-f-]{{36}})">Page Plan \({code}\)', plan)
    assert plan_id is not None
    assert "Plan Page Plan created." not in (await client.get("/provider/plans")).text

    price = await submit("/provider/prices", plan,
                         {"plan_id": plan_id.group(1), "amount_cents": "1900",
                          "interval": "month"}, "/provider/plans")  # fmt: skip
    assert "Price added." in price
    assert "$19.00 / month" in price

    coupons = (await client.get("/provider/coupons")).text
    coupon = await submit("/provider/coupons", coupons,
                          {"code": code.upper(), "percent_off": "10", "duration": "once"},
                          "/provider/coupons")  # fmt: skip
    assert f"Coupon {code.upper()} created." in coupon

    # The config is global (shared with other tests): change it, check, then restore it.
    settings = (await client.get("/provider/settings")).text
    trial = re.search(r'name="trial_days" type="number" value="(\d+)"', settings)
    assert trial is not None
    changed = str(int(trial.group(1)) + 7)
    saved = await submit("/provider/settings", settings, {"trial_days": changed},
                         "/provider/settings")  # fmt: skip
    assert "Settings saved." in saved
    assert f'name="trial_days" type="number" value="{changed}"' in saved
    restored = await submit("/provider/settings", saved, {"trial_days": trial.group(1)},
                            "/provider/settings")  # fmt: skip
    assert "Settings saved." in restored

    duplicate = await client.post(
        "/provider/plans", data={**_hidden(restored), "code": code, "name": "Again"}
    )
    assert duplicate.status_code == 409
    assert 'role="alert"' in duplicate.text
    assert 'value="Again"' in duplicate.text  # what was entered is kept


async def test_field_errors_are_tied_to_their_fields(client: AsyncTestClient[Litestar]) -> None:
    """A value the body type refuses shows its message next to the field (aria-describedby,
    aria-invalid), keeps what was entered, and never names an internal path."""
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    page = (await client.get("/provider/plans")).text
    refused = await client.post(
        "/provider/plans", data={**_hidden(page), "code": "Not A Code", "name": "Kept name"}
    )
    assert refused.status_code == 400
    text = refused.text
    assert "Please correct the marked fields." in text
    assert "/api/" not in text
    control = re.search(r'<input id="plan-code" name="code"[^>]*>', text)
    assert control is not None
    assert 'aria-invalid="true"' in control.group(0)
    assert "plan-code-error" in control.group(0)
    assert '<p class="field-error" id="plan-code-error">' in text
    assert 'value="Not A Code"' in text
    assert 'value="Kept name"' in text


async def test_form_without_csrf_field_is_refused(client: AsyncTestClient[Litestar]) -> None:
    """A page form post without the `_csrf` field is 403 (a forged cross-site form)."""
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    response = await client.post("/provider/plans", data={"code": "forged", "name": "Forged"})
    assert response.status_code == 403


async def test_invite_onboarding_and_owner_pages(client: AsyncTestClient[Litestar]) -> None:
    """Invite on /provider, accept on /onboarding, then the owner logs in and sees /owner,
    where a price linked to Stripe can be subscribed to and an unlinked one cannot."""
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    csrf = {"X-CSRF-Token": client.cookies.get("cw_csrf") or ""}
    tag = uuid.uuid4().hex[:8]
    plan = await client.post(
        "/api/provider/plans", json={"code": f"pages-{tag}", "name": "Pages Plan"}, headers=csrf
    )
    prices = [
        (
            await client.post(
                f"/api/provider/plans/{plan.json()['id']}/prices",
                json={"amount_cents": cents, "currency": "usd"},
                headers=csrf,
            )
        ).json()
        for cents in (1500, 1600)
    ]
    linked = await client.patch(
        f"/api/provider/plans/{plan.json()['id']}/prices/{prices[0]['id']}",
        json={"stripe_price_id": f"price_pages_{tag}"},
        headers=csrf,
    )
    assert linked.status_code == 200, linked.text
    dashboard = await client.get("/provider/invites")
    email = f"pages-{uuid.uuid4().hex[:8]}@example.com"
    posted = await client.post(
        "/provider/invites",
        data={**_hidden(dashboard.text), "email": email, "org_name": "Pages Org",
              "expires_in_hours": "24"},
        follow_redirects=False,
    )  # fmt: skip
    assert posted.status_code == 303, posted.text
    invited = await client.get(posted.headers["location"])
    link = re.search(r'id="invite-link" class="link" readonly value="([^"]+)"', invited.text)
    assert link is not None
    assert "invite-link" not in (await client.get("/provider/invites")).text  # shown once
    accept_url = html.unescape(link.group(1))
    assert accept_url.startswith("http://testserver.local/onboarding?token=")

    await client.post("/logout", data=_hidden(invited.text))
    assert client.cookies.get("cw_session") is None
    form = await client.get(accept_url.removeprefix("http://testserver.local"))
    assert form.status_code == 200
    assert "Pages Org" in form.text
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    accepted = await client.post(
        "/onboarding",
        data={**_hidden(form.text), "token": html.unescape(token.group(1)), "name": "Pat",
              "password": "a-long-owner-password"},
        follow_redirects=False,
    )  # fmt: skip
    assert accepted.status_code == 303, accepted.text
    assert accepted.headers["location"] == "/login"
    assert "Your organization is ready." in (await client.get("/login")).text

    reused = await client.get(accept_url.removeprefix("http://testserver.local"))
    assert reused.status_code == 409

    assert await _page_login(client, email, "a-long-owner-password") == "/owner"
    owner_page = await client.get("/owner")
    assert owner_page.status_code == 200
    assert "Pages Org" in owner_page.text
    assert 'action="/owner/billing/checkout"' in owner_page.text
    assert f'name="price_id" value="{prices[0]["id"]}"' in owner_page.text
    assert f'name="price_id" value="{prices[1]["id"]}"' not in owner_page.text
    assert '$16.00 / month <span class="muted">(not open for subscription yet)' in owner_page.text
    assert "Pay by card" in owner_page.text


async def test_onboarding_error_keeps_the_form(client: AsyncTestClient[Litestar]) -> None:
    """A password the service refuses re-shows the invite's form with the name entered and
    the message at the password field, so the invitee need not reopen the e-mail."""
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    page = await client.get("/provider/invites")
    email = f"short-{uuid.uuid4().hex[:8]}@example.com"
    invited = await client.post("/provider/invites", data={**_hidden(page.text),
                                "email": email, "org_name": "Kept Org"})  # fmt: skip
    link = re.search(r'id="invite-link" class="link" readonly value="([^"]+)"', invited.text)
    assert link is not None
    client.cookies.clear()
    form = await client.get(html.unescape(link.group(1)).removeprefix("http://testserver.local"))
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    refused = await client.post(
        "/onboarding",
        data={**_hidden(form.text), "token": html.unescape(token.group(1)), "name": "Pat Kept",
              "password": "short"},
    )  # fmt: skip
    assert refused.status_code == 400
    assert "Kept Org" in refused.text
    assert 'value="Pat Kept"' in refused.text
    assert '<p class="field-error" id="accept-password-error">At least 12 characters.</p>' in (
        refused.text
    )
    assert 'name="token"' in refused.text


async def test_expired_session_is_told_on_the_login_page(
    client: AsyncTestClient[Litestar],
) -> None:
    """A browser whose session cookie the service no longer knows is sent to log in again
    with "session expired" (and back to the page afterwards)."""
    client.cookies.set("cw_session", "no-longer-known")
    response = await client.get("/provider/plans", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/provider/plans&expired=1"
    page = await client.get(response.headers["location"])
    assert "Your session has expired." in page.text


async def test_bad_onboarding_link_shows_its_error(client: AsyncTestClient[Litestar]) -> None:
    """A tampered token renders the page with the API's 400 and its message."""
    response = await client.get("/onboarding?token=not-a-real-token")
    assert response.status_code == 400
    assert 'role="alert"' in response.text


async def test_owner_cannot_open_the_provider_page(
    app: Litestar, client: AsyncTestClient[Litestar]
) -> None:
    """An owner on /provider gets an HTML 403 page, not the dashboard."""
    owner = await create_owner(app)
    await _page_login(client, owner.email, owner.password)
    response = await client.get("/provider")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Organizations</h1>" not in response.text


async def test_pages_act_as_the_visitor_behind_the_load_balancer(
    make_settings: SettingsFactory, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Behind a trusted proxy, a page's API call is rate-limited and audited as the visitor
    (the right-most untrusted `X-Forwarded-For` hop), not as the proxy: one visitor's wrong
    passwords do not lock another out of the login page, and the audit row has their IP."""
    settings = make_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=redis_prefix,
        TRUSTED_PROXIES="10.0.0.0/8",
        RATE_LIMIT_AUTH="3/minute",
    )
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    visitor = {"X-Forwarded-For": "198.51.100.7"}
    load_balancer = ("10.0.0.5", 4000)
    async with in_loop_client(create_app(settings), peer=load_balancer) as http:
        for _ in range(3):
            wrong = {"username": "provider", "password": "wrong"}
            assert (await http.post("/login", data=wrong, headers=attacker)).status_code == 401
        assert (await http.post("/login", data=wrong, headers=attacker)).status_code == 429
        right = {"username": "provider", "password": STAFF_PASSWORDS["provider"]}
        login = await http.post("/login", data=right, headers=visitor)
        assert login.status_code == 303, login.text

        dashboard = await http.get("/provider/invites", headers=visitor)
        email = f"xff-{uuid.uuid4().hex[:8]}@example.com"
        invited = await http.post(
            "/provider/invites",
            data={**_hidden(dashboard.text), "email": email, "org_name": "XFF Org"},
            headers=visitor,
        )
        assert invited.status_code == 303, invited.text

    engine = create_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            ips = (
                await session.scalars(
                    select(AuditEntry.ip).where(
                        AuditEntry.entity == "onboarding_invite",
                        AuditEntry.ip.in_(["198.51.100.7", "10.0.0.5"]),
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert ips == ["198.51.100.7"]


async def test_odd_visitor_input_gets_the_page_error_not_a_500(
    client: AsyncTestClient[Litestar],
) -> None:
    """A non-ASCII User-Agent (httpx refused to forward it), numbers `int` refuses after
    `isdigit` said yes ("--5", "²", 5,000 digits) and a non-ASCII form key were 500s."""
    agent = {b"user-agent": "Mozilla/5.0 café".encode()}
    assert (await client.get("/login", headers=agent)).status_code == 200
    assert (await client.get("/onboarding?token=abc", headers=agent)).status_code == 400
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    dashboard = await client.get("/provider/settings", headers=agent)
    assert dashboard.status_code == 200
    for trial_days in ("--5", "²", "9" * 5000):
        page = await client.post(
            "/provider/settings",
            data={"_csrf": _hidden(dashboard.text)["_csrf"], "trial_days": trial_days},
        )
        assert page.status_code == 400, (trial_days[:10], page.status_code)
        assert 'role="alert"' in page.text
    keyed = await client.post(
        "/provider/plans",
        data={"_csrf": _hidden(dashboard.text)["_csrf"], "_form_key": "clé", "code": "k",
              "name": "K"},
    )  # fmt: skip
    assert keyed.status_code == 400
    assert "Idempotency-Key" in keyed.text


async def test_undecodable_forms_and_nul_paths_are_400(
    client: AsyncTestClient[Litestar],
) -> None:
    """A multipart form with bytes that are not UTF-8 or a part in an unknown charset (the
    form parser raised: 500 on every form page), and a NUL in a static path (500 from the
    file system), are 400."""
    boundary = {"Content-Type": "multipart/form-data; boundary=x"}
    not_utf8 = b'--x\r\nContent-Disposition: form-data; name="username"\r\n\r\n\xff\r\n--x--\r\n'
    unknown_charset = (
        b'--x\r\nContent-Disposition: form-data; name="username"\r\n'
        b"Content-Type: text/plain; charset=x-nope\r\n\r\nab\r\n--x--\r\n"
    )
    for body in (not_utf8, unknown_charset):
        response = await client.post("/login", content=body, headers=boundary)
        assert response.status_code == 400, response.text
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    with_session = await client.post("/provider/plans", content=not_utf8, headers=boundary)
    assert with_session.status_code == 403  # no readable CSRF token in it
    assert (await client.get("/static/site.css%00")).status_code == 400


async def test_audit_log_page_filters_and_pages_by_cursor(
    client: AsyncTestClient[Litestar], database_url: str
) -> None:
    """The audit page shows 50 matching entries newest first, an "Older entries" link that
    carries the filter and the cursor, and the rest on the next page."""
    entity = f"pagetest{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            session.add_all(
                AuditEntry(actor="seed", role="provider", entity=entity,
                           entity_id=str(n), action="update", changes={})
                for n in range(55)
            )  # fmt: skip
    finally:
        await engine.dispose()
    await _page_login(client, "provider", STAFF_PASSWORDS["provider"])
    first = await client.get("/provider/audit", params={"entity": entity})
    assert first.status_code == 200
    assert first.text.count(f"update {entity}") == 50
    older = re.search(r'<a href="([^"]+)">Older entries</a>', first.text)
    assert older is not None
    next_url = html.unescape(older.group(1))
    assert f"entity={entity}" in next_url
    assert "cursor=" in next_url
    second = await client.get(next_url)
    assert second.text.count(f"update {entity}") == 5
    assert "Older entries" not in second.text
    assert "Newest entries" in second.text
    bad = await client.get("/provider/audit", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert "The cursor is not one this API returned." in bad.text
