"""Security headers of every HTML page, error pages included."""

from __future__ import annotations

from typing import Final

__all__ = ["PAGE_HEADERS"]

# Pages load only their own stylesheet and script; forms post only here (or go to Stripe's pages).
_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "form-action 'self' https://billing.stripe.com https://checkout.stripe.com; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    # Not `no-referrer`: under it Chromium posts forms with `Origin: null`. `same-origin`
    # keeps `Origin` on our own forms and sends nothing to other sites (an invite link's
    # token never leaves in a Referer).
    "Referrer-Policy": "same-origin",
}
