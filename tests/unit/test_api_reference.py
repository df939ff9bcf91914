"""The API reference: security schemes in the document, and a reader that needs no CDN."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from cortiware.api_reference import ASSET_FILES, ASSETS_PATH
from cortiware.app import create_app
from cortiware.auth.csrf import CSRF_HEADER, UNSAFE_METHODS
from cortiware.openapi import render_openapi
from cortiware.settings import Settings


@cache
def _app() -> Litestar:
    return create_app(Settings.from_env({}))


def _guarded(handler: Any) -> bool:
    guards = [g for layer in handler.ownership_layers for g in layer.guards or []]
    return any(hasattr(g, "allowed_roles") for g in guards)


def test_document_declares_the_session_cookie_and_csrf_header() -> None:
    """`components.securitySchemes` names the session cookie and the `X-CSRF-Token` header."""
    schemes = json.loads(render_openapi(create_app(Settings.from_env({}))))["components"][
        "securitySchemes"
    ]
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "cw_session",
        "description": schemes["session"]["description"],
    }
    assert schemes["csrf"]["in"] == "header"
    assert schemes["csrf"]["name"] == CSRF_HEADER


def test_role_guarded_operations_require_the_session_and_csrf_on_unsafe_methods() -> None:
    """Every role-guarded operation requires the session (and the CSRF header when unsafe);
    public ones (login, onboarding, webhooks, health) require nothing."""
    paths = json.loads(render_openapi(create_app(Settings.from_env({}))))["paths"]
    checked = 0
    for route in _app().routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = paths[route.path_format].get(method.lower())
                if operation is None:
                    continue
                checked += 1
                security = operation.get("security")
                if not _guarded(handler):
                    assert security is None, (method, route.path_format)
                elif method in UNSAFE_METHODS:
                    assert security == [{"session": [], "csrf": []}], (method, route.path_format)
                else:
                    assert security == [{"session": []}], (method, route.path_format)
    assert checked > 20


def test_reader_page_loads_only_the_services_own_files() -> None:
    """`/api/docs` references scripts, styles and icons on the service only, and each one
    is served."""
    with TestClient(app=_app()) as client:
        page = client.get("/api/docs")
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert urls, page.text
        assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
        for name in ASSET_FILES:
            assert f"{ASSETS_PATH}/{name}" in urls
            asset = client.get(f"{ASSETS_PATH}/{name}")
            assert asset.status_code == 200
            assert len(asset.content) > 10_000
        assert "cdn." not in page.text
        assert "validatorUrl" in page.text
