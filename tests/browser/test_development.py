"""`cortiware serve` in development, on any port and host name, works in Chromium as is."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.checks import log_in, log_out
from tests.browser.conftest import open_tab
from tests.support.servers import cortiware_serve


@pytest.fixture(scope="module")
def development(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Zero-configuration `cortiware serve` (SQLite file, memory stores) on a free port."""
    with cortiware_serve(tmp_path_factory.mktemp("dev-serve")) as base:
        yield base


def test_forms_work_on_any_port_and_host_name(browser: Browser, development: str) -> None:
    """Without BASE_URL, logging in and out works at `localhost:<port>` (not :8000, not the
    127.0.0.1 the server bound), and an invite link names the address served."""
    port = development.rsplit(":", 1)[1]
    context, tab = open_tab(browser, f"http://localhost:{port}")
    try:
        log_in(tab.page, "provider", "provider-dev-password", lands_on="/provider")
        tab.page.goto("/provider/invites")
        tab.page.get_by_label("Owner e-mail").fill("dev@example.com")
        tab.page.get_by_label("Organization name").fill("Dev Org")
        tab.page.get_by_role("button", name="Create invite").click()
        link = tab.page.get_by_label("Invite link").input_value()
        assert re.match(rf"http://127\.0\.0\.1:{port}/onboarding\?token=", link), link
        log_out(tab.page)
        expect(tab.page.get_by_role("heading", name="Log in")).to_be_visible()
    finally:
        context.close()
    assert tab.console_errors == []
    assert tab.non_html_documents() == []
