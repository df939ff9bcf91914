"""What every page is held to in the browser, and the steps journeys share."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

__all__ = [
    "MOBILE",
    "assert_accessible",
    "assert_fits",
    "assert_page_is_sound",
    "log_in",
    "log_out",
    "screenshot",
]

MOBILE = {"width": 390, "height": 844}
_AXE = Axe()
_BLOCKING = frozenset({"serious", "critical"})


def assert_accessible(page: Page) -> None:
    """axe-core (WCAG 2.x A/AA and best practices) finds no serious or critical violation."""
    results = _AXE.run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in violations
        if v.get("impact") in _BLOCKING
    ]
    assert blocking == [], f"{page.url}: " + "; ".join(blocking)


def assert_fits(page: Page, width: int = MOBILE["width"]) -> None:
    """At `width` CSS pixels the page needs no horizontal scrolling (the viewport is put
    back afterwards)."""
    before = page.viewport_size
    page.set_viewport_size({"width": width, "height": MOBILE["height"]})
    try:
        overflow = page.evaluate(
            """() => {
                const root = document.documentElement;
                if (root.scrollWidth <= root.clientWidth) return null;
                const wide = [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > root.clientWidth + 1)
                    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                        + (e.className ? '.' + String(e.className).split(' ').join('.') : ''));
                return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide};
            }"""
        )
        assert overflow is None, f"{page.url} overflows at {width}px: {overflow}"
    finally:
        if before is not None:
            page.set_viewport_size(before)


def assert_page_is_sound(page: Page, shot: str | None = None) -> None:
    """Accessible, fits a phone, and (when named) photographed for the guides."""
    assert_accessible(page)
    assert_fits(page)
    if shot:
        screenshot(page, shot)


def screenshot(page: Page, name: str) -> None:
    """Save a full-page PNG as `<name>.png` (and `<name>-mobile.png` at 390 px) into
    `CORTIWARE_SCREENSHOT_DIR` when that is set (`make screenshots` sets it to the guides'
    image folder); otherwise nothing."""
    folder = os.environ.get("CORTIWARE_SCREENSHOT_DIR")
    if not folder:
        return
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)
    before = page.viewport_size
    page.set_viewport_size(MOBILE)  # type: ignore[arg-type]
    page.screenshot(path=str(target / f"{name}-mobile.png"), full_page=True)
    if before is not None:
        page.set_viewport_size(before)


def log_in(page: Page, username: str, password: str, *, lands_on: str) -> None:
    """Log in through the login form and arrive at `lands_on` (a path)."""
    page.goto("/login")
    page.get_by_label(re.compile("^Username|^E-mail", re.IGNORECASE)).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(lands_on) + r"(\?.*)?$"))


def log_out(page: Page) -> None:
    """Log out with the header's button and arrive at the login form."""
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
