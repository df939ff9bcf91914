"""Error pages in Chromium: a person never lands on problem+json outside `/api/`."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.checks import assert_page_is_sound, log_in
from tests.browser.conftest import Tab
from tests.support.auth import STAFF_PASSWORDS


def test_unknown_page_is_an_html_404(tab: Tab) -> None:
    """An unknown address shows a readable, accessible 404 page with a way back."""
    tab.error_pages_expected = True
    response = tab.page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(tab.page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(tab.page.get_by_role("link", name="Log in")).to_be_visible()
    assert_page_is_sound(tab.page, shot="error-404")


def test_wrong_role_gets_an_html_403(tab: Tab) -> None:
    """The provider opening the owner's page gets the HTML 403 page, not JSON."""
    tab.error_pages_expected = True
    log_in(tab.page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    response = tab.page.goto("/owner")
    assert response is not None
    assert response.status == 403
    expect(tab.page.get_by_role("heading", name="You can't do that here")).to_be_visible()
    assert_page_is_sound(tab.page)


def test_api_paths_keep_problem_json(tab: Tab) -> None:
    """Under `/api/` an unknown path is still problem+json (for programs, not people)."""
    response = tab.page.request.get("/api/no-such-thing")
    assert response.status == 404
    assert response.headers["content-type"].startswith("application/problem+json")
