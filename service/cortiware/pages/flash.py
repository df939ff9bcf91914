"""Flash messages for Post/Redirect/Get: a form's outcome survives the redirect once.

A successful form answers `303 See Other` to a page (so a reload repeats nothing) and leaves
its message in a short-lived cookie, signed with `SESSION_SECRET` (a visitor cannot forge a
message) and HttpOnly. The next page rendered shows it and clears the cookie. An invite's
accept link travels this way too: it exists only in the answer that created it.
"""

from __future__ import annotations

from typing import Any, Final

from itsdangerous import BadData, URLSafeTimedSerializer
from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect

from cortiware.auth.cookies import read_cookie
from cortiware.auth.routes import settings_of

__all__ = ["FLASH_COOKIE", "clear_flash", "redirect_with_flash", "take_flash"]

FLASH_COOKIE: Final = "cw_flash"
_MAX_AGE: Final = 300
_SALT: Final = "cortiware-flash-v1"


def _serializer(request: Request[Any, Any, Any]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings_of(request).session_secret, salt=_SALT)


def redirect_with_flash(
    request: Request[Any, Any, Any], to: str, notice: str, **extra: Any
) -> Redirect:
    """`303` to `to`, with `notice` (and JSON-able `extra`) for the page shown next."""
    value = _serializer(request).dumps({"notice": notice, **extra})
    cookie = Cookie(
        key=FLASH_COOKIE,
        value=value,
        path="/",
        max_age=_MAX_AGE,
        httponly=True,
        secure=settings_of(request).secure_cookies,
        samesite="lax",
    )
    return Redirect(to, status_code=303, cookies=[cookie])


def take_flash(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The flash left for this page (empty when none, expired or not signed by us)."""
    raw = read_cookie(request.scope, FLASH_COOKIE)
    if not raw:
        return {}
    try:
        found = _serializer(request).loads(raw, max_age=_MAX_AGE)
    except BadData:
        return {}
    return found if isinstance(found, dict) else {}


def clear_flash(request: Request[Any, Any, Any]) -> list[Cookie]:
    """The `Set-Cookie` that removes a flash once shown (none when there was none)."""
    if read_cookie(request.scope, FLASH_COOKIE) is None:
        return []
    return [
        Cookie(
            key=FLASH_COOKIE,
            value="",
            path="/",
            max_age=0,
            expires=0,
            httponly=True,
            secure=settings_of(request).secure_cookies,
            samesite="lax",
        )
    ]
