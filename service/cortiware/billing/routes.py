"""Owner billing routes: Billing Portal and Checkout sessions (owner role only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post

from cortiware.auth import Role, require_roles
from cortiware.errors import ServiceUnavailable

__all__ = ["BillingController"]


class BillingController(Controller):
    """`/api/owner/billing/*`: Stripe-hosted pages for the organization's owner."""

    path = "/api/owner/billing"
    guards = [require_roles(Role.OWNER)]  # noqa: RUF012

    @post("/portal", status_code=200)
    async def portal(self) -> dict[str, Any]:
        """A Billing Portal session URL for the owner's organization."""
        raise ServiceUnavailable("Billing is being set up.")

    @post("/checkout", status_code=200)
    async def checkout(self) -> dict[str, Any]:
        """A Checkout session URL for the requested price."""
        raise ServiceUnavailable("Billing is being set up.")
