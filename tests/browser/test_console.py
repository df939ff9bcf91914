"""The provider console and the staff pages in Chromium: every page sound, each form
working through Post/Redirect/Get with its message."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.checks import assert_page_is_sound, log_in, log_out
from tests.browser.conftest import Service, Tab, open_tab
from tests.support.auth import STAFF_PASSWORDS

CONSOLE = [
    ("Organizations", "/provider", "Organizations", "provider-organizations"),
    ("Invites", "/provider/invites", "Invites", "provider-invites"),
    ("Plans", "/provider/plans", "Plans and prices", "provider-plans"),
    ("Coupons", "/provider/coupons", "Coupons", "provider-coupons"),
    ("Settings", "/provider/settings", "Settings", "provider-settings"),
    ("Audit log", "/provider/audit", "Audit log", "provider-audit"),
    ("Revenue", "/accountant", "Revenue", None),
    ("Diagnostics", "/developer", "Diagnostics", None),
]


def _notice(page: Page, text: str) -> None:
    expect(page.get_by_role("status")).to_contain_text(text)


def test_every_console_page_is_sound(tab: Tab) -> None:
    """Each page in the provider's navigation is reachable from it, marked current, has no
    serious axe violation and fits 390 px."""
    log_in(tab.page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    nav = tab.page.get_by_role("navigation", name="Main")
    for link, path, heading, shot in CONSOLE:
        nav.get_by_role("link", name=link, exact=True).click()
        expect(tab.page).to_have_url(re.compile(re.escape(path) + "$"))
        expect(tab.page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(nav.get_by_role("link", name=link, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        assert_page_is_sound(tab.page, shot=shot)


@pytest.mark.parametrize(
    ("role", "home", "heading", "shot"),
    [
        ("developer", "/developer", "Diagnostics", "developer-diagnostics"),
        ("accountant", "/accountant", "Revenue", "accountant-revenue"),
    ],
)
def test_staff_land_on_their_page(tab: Tab, role: str, home: str, heading: str, shot: str) -> None:
    """Developers and accountants land on an HTML page of their own, not a list of JSON links."""
    log_in(tab.page, role, STAFF_PASSWORDS[role], lands_on=home)
    expect(tab.page.get_by_role("heading", level=1)).to_have_text(heading)
    assert_page_is_sound(tab.page, shot=shot)
    tab.page.goto("/")
    expect(tab.page).to_have_url(re.compile(re.escape(home) + "$"))
    log_out(tab.page)


def test_provider_manages_plans_coupons_and_settings(tab: Tab) -> None:
    """Create a plan with features, add a price, edit and archive it, delete it; create and
    delete a limited, expiring coupon; a refused value is marked at its field; the audit log
    lists and filters what was done."""
    page = tab.page
    tab.error_pages_expected = True  # the refused form answers 400
    code = f"b{uuid.uuid4().hex[:8]}"
    log_in(page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    page.goto("/provider/plans")

    new_plan = page.locator("form[action='/provider/plans']")
    new_plan.get_by_label("Code").fill("Not A Code")
    new_plan.get_by_label("Name").fill("Browser Plan")
    new_plan.get_by_role("button", name="Create plan").click()
    code_field = page.locator("form[action='/provider/plans']").get_by_label("Code")
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#plan-code-error")).to_have_text(
        "Not in the expected format (see the hint)."
    )
    expect(page.locator("form[action='/provider/plans']").get_by_label("Name")).to_have_value(
        "Browser Plan"
    )
    assert_page_is_sound(page, shot="provider-plan-error")

    code_field.fill(code)
    page.locator("form[action='/provider/plans']").get_by_label("Features").fill("One\nTwo")
    page.get_by_role("button", name="Create plan").click()
    expect(page).to_have_url(re.compile(r"/provider/plans$"))
    _notice(page, "Plan Browser Plan created.")

    price_form = page.locator("form[action='/provider/prices']")
    price_form.get_by_label("Plan").select_option(label=f"Browser Plan ({code})")
    price_form.get_by_label("Amount in cents").fill("12345")
    price_form.get_by_label("Billed every").select_option("year")
    price_form.get_by_role("button", name="Add price").click()
    _notice(page, "Price added.")
    expect(page.get_by_text("$123.45 / year", exact=True)).to_be_visible()

    section = page.locator("section").filter(has=page.get_by_role("heading", name=re.compile(code)))
    section.get_by_text("Edit Browser Plan").click()
    section.get_by_label("Name").fill("Browser Plan Renamed")
    section.get_by_label(re.compile("^Offered to new subscribers")).uncheck()
    section.get_by_role("button", name="Save Browser Plan").click()
    _notice(page, "Plan Browser Plan Renamed saved.")
    renamed = page.locator("section").filter(has=page.get_by_role("heading", name=re.compile(code)))
    expect(renamed.get_by_text("archived")).to_be_visible()
    renamed.get_by_text("Edit Browser Plan Renamed").click()
    renamed.get_by_role("button", name="Delete Browser Plan Renamed").click()
    _notice(page, "Plan deleted.")
    expect(page.get_by_role("heading", name=re.compile(code))).to_have_count(0)

    page.goto("/provider/coupons")
    coupon = code.upper()
    form = page.locator("form[action='/provider/coupons']")
    form.get_by_label("Code").fill(coupon)
    form.get_by_label("Amount off in cents").fill("500")
    form.get_by_label("Currency of the amount").fill("eur")
    form.get_by_label("Redemption limit").fill("3")
    form.get_by_label("Last day it can be redeemed (UTC)").fill("2031-01-31")
    form.get_by_role("button", name="Create coupon").click()
    _notice(page, f"Coupon {coupon} created.")
    row = page.get_by_role("row").filter(has_text=coupon)
    expect(row).to_contain_text("€5.00 off")
    expect(row).to_contain_text("31 Jan 2031, 23:59 UTC")
    assert_page_is_sound(page)
    row.get_by_role("button", name=f"Delete coupon {coupon}").click()
    _notice(page, f"Coupon {coupon} deleted.")

    page.goto("/provider/audit?entity=plan")
    expect(page.get_by_role("row").filter(has_text="delete plan").first).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="create coupon")).to_have_count(0)
    assert_page_is_sound(page)


def test_retention_is_set_on_the_settings_page(tab: Tab) -> None:
    """The audit retention saved on the settings page is what the audit log states."""
    page = tab.page
    log_in(page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    page.goto("/provider/settings")
    field = page.get_by_label("Keep audit entries for (days)")
    before = field.input_value()
    field.fill("120")
    page.get_by_role("button", name="Save settings").click()
    _notice(page, "Settings saved.")
    page.goto("/provider/audit")
    expect(page.get_by_text("Entries are kept 120 days")).to_be_visible()
    page.goto("/provider/settings")
    page.get_by_label("Keep audit entries for (days)").fill(before)
    page.get_by_role("button", name="Save settings").click()
    _notice(page, "Settings saved.")


def test_provider_edits_links_and_archives_a_price(tab: Tab) -> None:
    """A price's amount is changed on the Plans page; a malformed Stripe id is marked at its
    field; linked to its Stripe price, its amount is shown fixed; unticked, it is archived."""
    page = tab.page
    tab.error_pages_expected = True  # the malformed Stripe id answers 400
    code = f"p{uuid.uuid4().hex[:8]}"
    log_in(page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    page.goto("/provider/plans")
    new_plan = page.locator("form[action='/provider/plans']")
    new_plan.get_by_label("Code").fill(code)
    new_plan.get_by_label("Name").fill("Priced Plan")
    new_plan.get_by_role("button", name="Create plan").click()
    _notice(page, "Plan Priced Plan created.")
    price_form = page.locator("form[action='/provider/prices']")
    price_form.get_by_label("Plan").select_option(label=f"Priced Plan ({code})")
    price_form.get_by_label("Amount in cents").fill("2500")
    price_form.get_by_label("Currency").fill("eur")
    price_form.get_by_role("button", name="Add price").click()
    _notice(page, "Price added.")

    def section() -> Any:
        return page.locator("section").filter(
            has=page.get_by_role("heading", name=re.compile(code))
        )

    section().get_by_text("Edit price €25.00 / month").click()
    change = section().locator("form[action^='/provider/prices/']:not([action$='/stripe'])")
    change.get_by_label("Amount in cents").fill("3000")
    change.get_by_role("button", name="Save price").click()
    _notice(page, "Price saved.")
    expect(section().get_by_text("€30.00 / month", exact=True)).to_be_visible()

    section().get_by_text("Edit price €30.00 / month").click()
    link = section().locator("form[action$='/stripe']")
    link.get_by_label("Stripe price id").fill("prod_not_a_price")
    link.get_by_role("button", name="Save Stripe link").click()
    field = section().locator("form[action$='/stripe']").get_by_label("Stripe price id")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("prod_not_a_price")
    assert_page_is_sound(page, shot="provider-price-error")
    stripe_id = f"price_{code}"
    field.fill(stripe_id)
    section().get_by_role("button", name="Save Stripe link").click()
    _notice(page, f"Price linked to Stripe price {stripe_id}.")
    expect(section().get_by_text(stripe_id)).to_be_visible()

    section().get_by_text("Edit price €30.00 / month").click()
    change = section().locator("form[action^='/provider/prices/']:not([action$='/stripe'])")
    expect(change.get_by_label("Amount in cents")).to_have_attribute("readonly", "")
    change.get_by_label(re.compile("^Price offered to new subscribers")).uncheck()
    change.get_by_role("button", name="Save price").click()
    _notice(page, "Price saved.")
    expect(section().locator("ul.prices").get_by_text("archived")).to_be_visible()
    assert_page_is_sound(page, shot="provider-plans-prices")


def test_provider_revokes_an_invite(tab: Tab, browser: Browser, service: Service) -> None:
    """The Revoke button on the invite list revokes a pending invite with a notice; its link
    then opens a page saying it was revoked, not the accept form."""
    page = tab.page
    email = f"revoke-{uuid.uuid4().hex[:8]}@example.com"
    log_in(page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    page.goto("/provider/invites")
    form = page.locator("form[action='/provider/invites']")
    form.get_by_label("Owner e-mail").fill(email)
    form.get_by_label("Organization name").fill("Revoked Org")
    form.get_by_role("button", name="Create invite").click()
    _notice(page, "Invite created")
    link = page.get_by_label("Invite link").input_value()

    page.get_by_role("button", name=f"Revoke the invite for {email}").click()
    expect(page).to_have_url(re.compile(r"/provider/invites$"))
    _notice(page, f"Invite for {email} revoked; its link no longer works.")
    row = page.get_by_role("row").filter(has_text=email)
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name=re.compile("^Revoke"))).to_have_count(0)
    assert_page_is_sound(page, shot="provider-invite-revoked")

    context, invitee = open_tab(browser, service.base_url)
    invitee.error_pages_expected = True  # the revoked link answers 410
    try:
        answer = invitee.page.goto(link)
        assert answer is not None
        assert answer.status == 410
        expect(
            invitee.page.get_by_text("This invite was revoked; ask for a new one.")
        ).to_be_visible()
        expect(invitee.page.get_by_role("button", name="Create my organization")).to_have_count(0)
        assert_page_is_sound(invitee.page, shot="onboarding-revoked")
    finally:
        context.close()
    assert invitee.console_errors == []
