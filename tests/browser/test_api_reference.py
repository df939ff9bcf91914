"""The API reference renders in Chromium from the service's own files."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import Service, Tab


def test_reference_renders_without_any_other_host(tab: Tab, service: Service) -> None:
    """`/api/docs` shows the operations and the Authorize button, and the browser asks no
    host but the service for anything."""
    hosts: set[str] = set()
    tab.page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    tab.page.goto("/api/docs")
    expect(tab.page.get_by_role("heading", name="Cortiware API")).to_be_visible()
    expect(tab.page.locator(".opblock").first).to_be_visible()
    expect(tab.page.get_by_role("button", name="Authorize")).to_be_visible()
    assert hosts == {service.base_url.split("/")[2]}
