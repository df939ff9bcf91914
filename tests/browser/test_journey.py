"""The whole journey in Chromium, through the pages only: the provider links the plan's
price to its Stripe price and invites, the invitee accepts, the owner subscribes through
Stripe Checkout, the provider sees it.

Stripe's API is the offline fake (over HTTP); Stripe's hosted Checkout page cannot be
reached offline, so the test stands in for it: the browser's visit to checkout.stripe.com
is answered with a stand-in page, and the test then does what Stripe does after a payment:
it sends the signed `customer.subscription.created` webhook and returns the browser to the
session's `success_url`.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.checks import assert_page_is_sound, log_in, log_out, screenshot
from tests.browser.conftest import STANDARD_STRIPE_PRICE, Service, Tab, open_tab
from tests.support.auth import STAFF_PASSWORDS
from tests.support.stripe_fake import signed, subscription_event, subscription_object

OWNER_PASSWORD = "a long owner password 42"
_CHECKOUT_STAND_IN = (
    "<!doctype html><html lang='en'><title>Checkout (stand-in)</title>"
    "<main><h1>Stripe Checkout stand-in</h1></main></html>"
)


def _stand_in_for_checkout(route: Route) -> None:
    route.fulfill(status=200, content_type="text/html; charset=utf-8", body=_CHECKOUT_STAND_IN)


def _invite(page: Page, email: str, org_name: str) -> str:
    """Create an invite on the provider page; return the accept link it shows once."""
    form = page.locator("form[action='/provider/invites']")
    form.get_by_label("Owner e-mail").fill(email)
    form.get_by_label("Organization name").fill(org_name)
    form.get_by_role("button", name="Create invite").click()
    expect(page.get_by_role("status")).to_contain_text("Invite created")
    link = page.get_by_label("Invite link").input_value()
    assert link.startswith("http"), link
    return link


def _link_standard_price(page: Page) -> None:
    """Link the seeded Standard plan's monthly price to its Stripe price on the Plans page."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Plans").click()
    standard = page.locator("section").filter(
        has=page.get_by_role("heading", name=re.compile(r"\bstandard$"))
    )
    standard.get_by_text("Edit price $49.00 / month").click()
    link = standard.locator("form[action$='/stripe']")
    link.get_by_label("Stripe price id").fill(STANDARD_STRIPE_PRICE)
    link.get_by_role("button", name="Save Stripe link").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Price linked to Stripe price {STANDARD_STRIPE_PRICE}."
    )
    assert_page_is_sound(page, shot="provider-price-linked")


def _accept(browser: Browser, service: Service, link: str) -> None:
    """The invitee, in a browser of their own, opens the link and creates the organization."""
    context, invitee = open_tab(browser, service.base_url)
    try:
        invitee.page.goto(link)
        expect(invitee.page.get_by_role("heading", name="Join Cortiware")).to_be_visible()
        assert_page_is_sound(invitee.page, shot="onboarding")
        invitee.page.get_by_label("Your name").fill("Pat Owner")
        invitee.page.get_by_label(re.compile("^Choose a password")).fill(OWNER_PASSWORD)
        invitee.page.get_by_role("button", name="Create my organization").click()
        expect(invitee.page).to_have_url(re.compile(r"/login$"))
        expect(invitee.page.get_by_role("status")).to_contain_text("Your organization is ready")
        assert_page_is_sound(invitee.page, shot="onboarding-done")
    finally:
        context.close()
    assert invitee.console_errors == []
    assert invitee.non_html_documents() == []


def _pay_as_stripe_would(service: Service, organization_id: str, customer: str) -> None:
    """Stripe's side of a finished Checkout: the signed subscription webhook."""
    sub_id = f"sub_{uuid.uuid4().hex[:14]}"
    now = int(time.time())
    obj = subscription_object(
        sub_id,
        customer=customer,
        status="active",
        price=STANDARD_STRIPE_PRICE,
        amount=4900,
        period_start=now,
        period_end=now + 30 * 86400,
        organization_id=organization_id,
    )
    event = subscription_event(
        f"evt_{uuid.uuid4().hex[:14]}", "customer.subscription.created", now, obj
    )
    secret = service.env["STRIPE_WEBHOOK_SECRET"].split(",")[0]
    answer = httpx.post(
        f"{service.base_url}/api/webhooks/stripe", content=event, headers=signed(event, secret)
    )
    assert answer.status_code == 200, answer.text


def test_invite_accept_subscribe_and_see_it(tab: Tab, browser: Browser, service: Service) -> None:
    """Provider invites, invitee accepts, owner subscribes through Checkout, provider sees
    the subscription, everyone logs out; every page on the way is HTML, accessible, fits a
    phone and logs no console error."""
    page = tab.page
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    org_name = f"Journey Org {uuid.uuid4().hex[:4]}"

    log_in(page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    assert_page_is_sound(page)
    _link_standard_price(page)
    page.get_by_role("link", name="Invites").click()
    link = _invite(page, email, org_name)
    assert_page_is_sound(page, shot="provider-invite-created")
    log_out(page)

    _accept(browser, service, link)

    log_in(page, email, OWNER_PASSWORD, lands_on="/owner")
    expect(page.get_by_role("heading", level=1)).to_contain_text(org_name)
    expect(page.get_by_text("trialing").first).to_be_visible()
    assert_page_is_sound(page, shot="owner-trial")

    expect(page.get_by_text("Pay by card or US bank account (ACH)").first).to_be_visible()
    page.route("https://checkout.stripe.com/**", _stand_in_for_checkout)
    subscribe = page.get_by_role(
        "button", name=re.compile(r"Subscribe to Standard for \$49\.00 \/ month")
    )
    subscribe.click()
    expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.com/c/pay/cs_test_"))
    checkout = service.stripe.calls("POST", "/v1/checkout/sessions")[-1].params
    assert checkout["line_items"][0]["price"] == STANDARD_STRIPE_PRICE
    assert checkout["mode"] == "subscription"
    assert checkout["allowed_payment_method_types"] == ["card", "us_bank_account"]
    _pay_as_stripe_would(service, checkout["metadata"]["organization_id"], checkout["customer"])
    page.goto(checkout["success_url"])
    expect(page.get_by_role("status")).to_contain_text("Thank you")
    expect(page.get_by_text("active", exact=True).first).to_be_visible()
    assert_page_is_sound(page, shot="owner-subscribed")
    log_out(page)

    log_in(page, "provider", STAFF_PASSWORDS["provider"], lands_on="/provider")
    page.get_by_role("searchbox").fill(org_name)
    page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row").filter(has_text=org_name)
    expect(row).to_contain_text("active")
    screenshot(page, "provider-dashboard")
    log_out(page)
    # The stand-in answered one document; every other was the service's own HTML.
    assert sum("checkout.stripe.com" in url for url, _, _ in tab.documents) == 1
    assert json.dumps(tab.non_html_documents()) == "[]"
