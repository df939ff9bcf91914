"""Forms from another site are refused in Chromium, however they are sent.

The attacker's page is served from `localhost` (another site than the service's
`127.0.0.1`), so Chromium itself sets `Origin` and `Sec-Fetch-Site` as it would for a
real attacker: nothing here forges a header.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.browser.checks import log_in
from tests.browser.conftest import Service, Tab
from tests.support.auth import STAFF_PASSWORDS


def _attacker_pages(target: str) -> dict[str, str]:
    form = (
        f'<form method="post" action="{target}/provider/invites">'
        '<input name="email" value="victim@example.com">'
        '<input name="org_name" value="Forged Org">'
        '<button type="submit">Win a prize</button></form>'
    )
    return {
        "/plain": f"<!doctype html><title>Prize</title>{form}",
        # A sandboxed frame posts with `Origin: null`.
        "/sandboxed": (
            "<!doctype html><title>Prize</title>"
            '<iframe sandbox="allow-forms allow-top-navigation-by-user-activation" '
            f'srcdoc="{form.replace(chr(34), "&quot;")}" width="400" height="200"></iframe>'
        ),
    }


@pytest.fixture
def attacker(service: Service) -> Iterator[str]:
    """A page on another site (`localhost`) whose form posts to the service."""
    pages = _attacker_pages(service.base_url)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _posts_to_service(tab: Tab, service: Service) -> list[dict[str, str]]:
    """Collect the headers of every POST the browser sends to the service."""
    seen: list[dict[str, str]] = []
    tab.page.on(
        "request",
        lambda r: (
            seen.append(r.headers)
            if r.method == "POST" and r.url.startswith(service.base_url)
            else None
        ),
    )
    return seen


def _no_forged_invite(tab: Tab) -> None:
    tab.page.goto("/provider/invites")
    expect(tab.page.get_by_text("Forged Org")).to_have_count(0)


def test_cross_site_form_is_refused(tab: Tab, service: Service, attacker: str) -> None:
    """A logged-in provider who submits another site's form gets the HTML 403 page and
    nothing is created."""
    tab.error_pages_expected = True
    log_in(tab.page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    posts = _posts_to_service(tab, service)
    tab.page.goto(f"{attacker}/plain")
    tab.page.get_by_role("button", name="Win a prize").click()
    expect(tab.page.get_by_role("heading", name="You can't do that here")).to_be_visible()
    expect(tab.page.get_by_role("alert")).to_contain_text("Cross-site request refused")
    assert posts[-1]["origin"] == attacker
    _no_forged_invite(tab)


def test_null_origin_cross_site_form_is_refused(tab: Tab, service: Service, attacker: str) -> None:
    """A sandboxed frame's form (`Origin: null`, cross-site) is refused too, and the refusal
    page itself will not be shown inside another site's frame."""
    tab.error_pages_expected = True
    tab.expected_console += ["Refused to display", "Framing "]
    log_in(tab.page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    posts = _posts_to_service(tab, service)
    tab.page.goto(f"{attacker}/sandboxed")
    frame = tab.page.frame_locator("iframe")
    with tab.page.expect_response(lambda r: r.request.method == "POST") as answer:
        frame.get_by_role("button", name="Win a prize").click()
    assert answer.value.status == 403
    assert answer.value.headers["x-frame-options"] == "DENY"
    assert posts[-1]["origin"] == "null"
    _no_forged_invite(tab)


def test_form_without_its_token_is_refused(tab: Tab) -> None:
    """A same-site form post whose CSRF token was removed gets the HTML 403 page."""
    tab.error_pages_expected = True
    log_in(tab.page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    tab.page.goto("/provider/invites")
    form = tab.page.locator("form[action='/provider/invites']")
    form.locator("input[name='_csrf']").evaluate("input => input.remove()")
    form.get_by_label("Owner e-mail").fill("no-token@example.com")
    form.get_by_label("Organization name").fill("Forged Org")
    form.get_by_role("button").click()
    expect(tab.page.get_by_role("alert")).to_contain_text("Missing or wrong CSRF token.")
    _no_forged_invite(tab)
