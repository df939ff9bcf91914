"""MRR normalisation of the accountant's revenue report."""

from __future__ import annotations

import pytest

from cortiware.portals.accountant import MRR_STATUSES, monthly_cents


@pytest.mark.parametrize(
    ("amount", "interval", "monthly"),
    [(4900, "month", 4900), (12000, "year", 1000), (1000, "week", 4333), (None, "month", 0)],
)
def test_monthly_cents(amount: int | None, interval: str, monthly: int) -> None:
    """Prices are normalised to a month: yearly / 12, weekly * 52 / 12; no amount is 0."""
    assert monthly_cents(amount, interval) == monthly


def test_mrr_counts_billed_statuses_only() -> None:
    """MRR counts active and past_due subscriptions, not trials or canceled ones."""
    assert frozenset({"active", "past_due"}) == MRR_STATUSES
