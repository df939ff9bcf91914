"""Server-rendered pages (contract §3 "Pages"): Jinja templates and a small stylesheet.

Page handlers call the domain services in-process, never the service's own HTTP API; a
form runs one command under its JSON route's rate limit and idempotency (`_commands.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from litestar import Router
from litestar.datastructures import ResponseHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from cortiware.errors import Forbidden
from cortiware.pages._headers import PAGE_HEADERS
from cortiware.pages.formatting import FILTERS
from cortiware.pages.guards import (
    LoginRequired,
    forbidden_page,
    redirect_to_login,
    require_page_roles,
)
from cortiware.pages.onboarding import OnboardingPages
from cortiware.pages.owner import OwnerPages
from cortiware.pages.provider import ProviderPages
from cortiware.pages.provider_audit import AuditPages
from cortiware.pages.provider_catalog import CatalogPages
from cortiware.pages.session import SessionPages
from cortiware.pages.staff import AccountantPages, DeveloperPages
from cortiware.route_policy import PAGE

__all__ = ["page_route_handlers", "require_page_roles", "template_config"]

_PACKAGE: Final = Path(__file__).resolve().parent.parent
TEMPLATES_DIR: Final = _PACKAGE / "templates"
STATIC_DIR: Final = _PACKAGE / "static"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja templates from `cortiware/templates` (autoescaped), with the `FILTERS`."""
    return TemplateConfig(
        directory=TEMPLATES_DIR,
        engine=JinjaTemplateEngine,
        engine_callback=lambda jinja: jinja.engine.filters.update(FILTERS),
    )


def page_route_handlers() -> list[Any]:
    """The page router and `/static`."""
    pages = Router(
        path="/",
        route_handlers=[
            SessionPages,
            ProviderPages,
            CatalogPages,
            AuditPages,
            OwnerPages,
            OnboardingPages,
            DeveloperPages,
            AccountantPages,
        ],
        exception_handlers={LoginRequired: redirect_to_login, Forbidden: forbidden_page},
        response_headers=[ResponseHeader(name=k, value=v) for k, v in PAGE_HEADERS.items()],
        include_in_schema=False,
        opt=PAGE,
    )
    static = create_static_files_router(
        path="/static", directories=[STATIC_DIR], include_in_schema=False, opt=PAGE
    )
    return [pages, static]
