"""Stripe billing: the pinned `StripeClient`, owner billing routes and `cortiware stripe …`."""
