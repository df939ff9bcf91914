"""Logging in and out in Chromium (a real browser's Origin, Referer and Fetch-Metadata)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.checks import assert_page_is_sound, log_in, log_out
from tests.browser.conftest import Tab
from tests.support.auth import STAFF_PASSWORDS


def test_login_page_is_accessible_and_fits_a_phone(tab: Tab) -> None:
    """The login page has no serious axe violation and no horizontal scroll at 390 px."""
    tab.page.goto("/login")
    expect(tab.page.get_by_role("heading", name="Log in")).to_be_visible()
    assert_page_is_sound(tab.page, shot="login")


def test_provider_logs_in_and_out(tab: Tab) -> None:
    """The provider's login form leads to the provider page, and Log out back to the form."""
    log_in(tab.page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    assert_page_is_sound(tab.page)
    log_out(tab.page)
    tab.page.goto("/provider")
    expect(tab.page).to_have_url(tab.page.url)
    assert "/login" in tab.page.url


def test_wrong_password_keeps_the_username_and_says_why(tab: Tab) -> None:
    """A wrong password shows one message on the form, with the username still filled in."""
    tab.error_pages_expected = True
    tab.page.goto("/login")
    tab.page.get_by_label("Username or e-mail").fill("provider")
    tab.page.get_by_label("Password", exact=True).fill("not the password")
    tab.page.get_by_role("button", name="Log in").click()
    expect(tab.page.get_by_role("alert")).to_contain_text("Invalid username or password.")
    expect(tab.page.get_by_label("Username or e-mail")).to_have_value("provider")
    # The 401 document itself is logged by Chromium as a failed load.
