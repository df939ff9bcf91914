"""`cortiware …` (the real CLI) whose Stripe SDK calls go to `CORTIWARE_TEST_STRIPE_API_BASE`.

Stripe's API is not reachable from tests, and a service in another process cannot be handed
the in-process fake transport; so this entry point moves the SDK's default API address to
the fake served by `tests/support/stripe_server.py`, then runs the CLI unchanged.
Usage: `python -m tests.support.serve_on_fake_stripe serve --port P`.
"""

from __future__ import annotations

import os

import stripe._stripe_client

from cortiware.cli import main

if __name__ == "__main__":
    # The SDK reads this module-level default each time a `StripeClient` is built.
    stripe._stripe_client.DEFAULT_API_BASE = os.environ["CORTIWARE_TEST_STRIPE_API_BASE"]
    main()
