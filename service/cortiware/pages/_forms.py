"""Reading a submitted form, and the CSRF token a rendered form must carry."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict

from cortiware.auth.cookies import CookieNames, csrf_token, read_cookie
from cortiware.auth.routes import settings_of
from cortiware.errors import BadRequest

__all__ = ["form_csrf_token", "read_form"]


async def read_form(request: Request[Any, Any, Any]) -> FormMultiDict:
    """The submitted form; 400 when it cannot be decoded (bytes that are not UTF-8, a part
    with an unknown charset), which Litestar's form parser raises as plain errors."""
    try:
        return await request.form()
    except (UnicodeDecodeError, LookupError, ValueError):
        raise BadRequest("The form could not be read: it is not UTF-8 text.") from None


def form_csrf_token(request: Request[Any, Any, Any]) -> str:
    """The token a form on this page must carry (empty when the browser has no session)."""
    settings = settings_of(request)
    session_id = read_cookie(request.scope, CookieNames.for_settings(settings).session)
    return csrf_token(settings.session_secret, session_id) if session_id else ""
