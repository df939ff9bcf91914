"""`render()`: a page template with what every page needs in its context."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Request
from litestar.response import Template

from cortiware.auth.principal import principal_of
from cortiware.pages._forms import form_csrf_token
from cortiware.pages.flash import clear_flash, take_flash

__all__ = ["render"]


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Template:
    """Render `template` with the principal, the form CSRF token, a fresh form key, the
    page's path (for the navigation) and the flash message left by a redirect (then cleared).

    `form_key` is the idempotency key of the form's command, so submitting the same rendered
    form twice (double click, reload) replays the first outcome instead of acting twice.
    """
    return Template(
        template_name=template,
        context={
            "principal": principal_of(request),
            "csrf_token": form_csrf_token(request),
            "form_key": uuid.uuid4().hex,
            "request_path": request.url.path.rstrip("/") or "/",
            "flash": take_flash(request),
            **context,
        },
        status_code=status,
        headers={**(headers or {}), "Cache-Control": "no-store"},
        cookies=clear_flash(request),
    )
