"""Jinja filters that write dates and money for people, registered on the template engine.

Dates are shown in UTC and say so ("6 Dec 2026, 21:48 UTC"); money is currency-aware
("$49.00", "¥4,900", "CHF 12.50"): Stripe's zero-decimal currencies have no minor unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

__all__ = ["FILTERS", "PAYMENT_METHOD_NAMES", "day", "money", "payment_methods", "price", "when"]

NOTHING: Final = "—"
# Stripe's zero-decimal currencies (amounts are in whole units): stripe.com/docs/currencies.
ZERO_DECIMAL: Final = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
SYMBOLS: Final[Mapping[str, str]] = {
    "usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "nzd": "NZ$",
    "inr": "₹", "krw": "₩", "brl": "R$", "mxn": "MX$",
}  # fmt: skip
INTERVALS: Final[Mapping[str, str]] = {"month": "month", "year": "year", "week": "week"}
PAYMENT_METHOD_NAMES: Final[Mapping[str, str]] = {
    "card": "card",
    "us_bank_account": "US bank account (ACH)",
    "sepa_debit": "SEPA Direct Debit",
    "bacs_debit": "Bacs Direct Debit",
    "au_becs_debit": "BECS Direct Debit",
}
"""Stripe's payment method types as Checkout names them to payers."""


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def when(value: Any) -> str:
    """`6 Dec 2026, 21:48 UTC` for a datetime or ISO 8601 text; `—` for nothing."""
    found = _datetime(value)
    if found is None:
        return str(value) if value else NOTHING
    return f"{found.day} {found:%b %Y, %H:%M} UTC"


def day(value: Any) -> str:
    """`6 Dec 2026` (the UTC date) for a datetime, date or ISO 8601 text; `—` for nothing."""
    found = _datetime(value)
    if found is None:
        return str(value) if value else NOTHING
    return f"{found.day} {found:%b %Y}"


def money(amount: Any, currency: Any = "usd") -> str:
    """`$49.00` for 4900 cents of USD; `¥4,900` for 4900 JPY; `CHF 12.50` without a symbol."""
    if amount is None or amount == "":
        return NOTHING
    code = str(currency or "usd").lower()
    minor = Decimal(int(amount))
    number = f"{minor:,.0f}" if code in ZERO_DECIMAL else f"{minor / 100:,.2f}"
    symbol = SYMBOLS.get(code)
    sign = "-" if number.startswith("-") else ""
    number = number.removeprefix("-")
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{code.upper()} {number}"


def price(value: Mapping[str, Any] | None) -> str:
    """`$49.00 / month` for a price (`amount_cents`, `currency`, `interval`)."""
    if not value:
        return NOTHING
    amount = money(value.get("amount_cents"), value.get("currency"))
    interval = INTERVALS.get(str(value.get("interval", "")), str(value.get("interval", "")))
    return f"{amount} / {interval}" if interval else amount


def payment_methods(methods: Any) -> str:
    """`card or US bank account (ACH)` for `["card", "us_bank_account"]`."""
    names = [PAYMENT_METHOD_NAMES.get(str(m), str(m)) for m in methods or ()]
    if len(names) <= 1:
        return "".join(names) or NOTHING
    return ", ".join(names[:-1]) + " or " + names[-1]


FILTERS: Final[Mapping[str, Callable[..., str]]] = {
    "payment_methods": payment_methods,
    "when": when,
    "day": day,
    "money": money,
    "price": price,
}
"""Name → filter, as templates use them: `{{ invite.expires_at | when }}`."""
