"""Dates and money on the pages are written for people, in UTC and per currency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cortiware.pages.formatting import (
    PAYMENT_METHOD_NAMES,
    day,
    money,
    payment_methods,
    price,
    when,
)
from cortiware.settings import CHECKOUT_PAYMENT_METHODS


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-12-06T21:48:04.123456+00:00", "6 Dec 2026, 21:48 UTC"),
        ("2026-12-06T21:48:04Z", "6 Dec 2026, 21:48 UTC"),
        (datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC), "2 Jan 2026, 03:04 UTC"),
        (datetime(2026, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=2))), "1 Jan 2026, 23:00 UTC"),
        (datetime(2026, 1, 2, 3, 4), "2 Jan 2026, 03:04 UTC"),
        (None, "—"),
        ("", "—"),
        ("not a date", "not a date"),
    ],
)
def test_when_shows_minutes_in_utc_and_says_so(value: object, shown: str) -> None:
    """Timestamps lose their microseconds, are converted to UTC and say "UTC"."""
    assert when(value) == shown


def test_day_shows_the_utc_date() -> None:
    """A date, a datetime and ISO text all read like `6 Dec 2026`."""
    assert day(date(2026, 12, 6)) == "6 Dec 2026"
    assert day("2026-12-06T23:30:00-02:00") == "7 Dec 2026"
    assert day(None) == "—"


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4900, "usd", "$49.00"),
        (123456789, "usd", "$1,234,567.89"),
        (5, "eur", "€0.05"),
        (4900, "jpy", "¥4,900"),
        (1250, "chf", "CHF 12.50"),
        (-300, "gbp", "-£3.00"),
        (None, "usd", "—"),
    ],
)
def test_money_is_currency_aware(amount: int | None, currency: str, shown: str) -> None:
    """Cents become units with the currency's symbol or code; zero-decimal ones stay whole."""
    assert money(amount, currency) == shown


def test_price_names_its_interval() -> None:
    """A price reads `$49.00 / month`."""
    assert price({"amount_cents": 4900, "currency": "usd", "interval": "month"}) == "$49.00 / month"
    assert price({"amount_cents": 50000, "currency": "jpy", "interval": "year"}) == "¥50,000 / year"
    assert price(None) == "—"


@pytest.mark.parametrize(
    ("methods", "shown"),
    [
        (["card"], "card"),
        (["card", "us_bank_account"], "card or US bank account (ACH)"),
        (["card", "sepa_debit", "bacs_debit"], "card, SEPA Direct Debit or Bacs Direct Debit"),
        ([], "—"),
    ],
)
def test_payment_methods_read_as_a_payer_would_say_them(methods: list[str], shown: str) -> None:
    """Checkout's payment method types become one phrase with Stripe's names for payers."""
    assert payment_methods(methods) == shown


def test_every_offered_payment_method_has_a_name_for_payers() -> None:
    """The names cover exactly the methods the settings accept."""
    assert set(PAYMENT_METHOD_NAMES) == set(CHECKOUT_PAYMENT_METHODS)
