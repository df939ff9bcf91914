"""The two cookies of a session: the HttpOnly session id and the script-readable CSRF token.

With `settings.secure_cookies` (staging, production) both are `Secure` and carry the
`__Host-` prefix, which browsers accept only from HTTPS with `Path=/` and no `Domain`, so a
sibling subdomain cannot plant or overwrite them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from litestar.datastructures import Cookie
from litestar.types import Scope

from cortiware.auth.sessions import ABSOLUTE_TIMEOUT_SECONDS
from cortiware.settings import Settings

__all__ = ["CookieNames", "csrf_token", "expired_cookies", "read_cookie", "session_cookies"]

_CSRF_CONTEXT: Final = b"cortiware-csrf-v1:"


@dataclass(frozen=True, slots=True)
class CookieNames:
    """Cookie names for the configured security level."""

    session: str
    csrf: str

    @classmethod
    def for_settings(cls, settings: Settings) -> CookieNames:
        """`__Host-cw_session`/`__Host-cw_csrf` when cookies are secure, else without prefix."""
        prefix = "__Host-" if settings.secure_cookies else ""
        return cls(session=f"{prefix}cw_session", csrf=f"{prefix}cw_csrf")


def csrf_token(secret: str, session_id: str) -> str:
    """The CSRF token bound to `session_id`: hex HMAC-SHA256 keyed with SESSION_SECRET."""
    return hmac.new(
        secret.encode(), _CSRF_CONTEXT + session_id.encode(), hashlib.sha256
    ).hexdigest()


def session_cookies(settings: Settings, session_id: str) -> list[Cookie]:
    """`Set-Cookie`s for a new session: the id (HttpOnly) and its CSRF token (readable)."""
    names = CookieNames.for_settings(settings)
    common = {
        "path": "/",
        "secure": settings.secure_cookies,
        "samesite": "lax",
        "max_age": ABSOLUTE_TIMEOUT_SECONDS,
    }
    return [
        Cookie(key=names.session, value=session_id, httponly=True, **common),  # type: ignore[arg-type]
        Cookie(
            key=names.csrf,
            value=csrf_token(settings.session_secret, session_id),
            httponly=False,
            **common,  # type: ignore[arg-type]
        ),
    ]


def expired_cookies(settings: Settings) -> list[Cookie]:
    """`Set-Cookie`s that remove both session cookies from the browser."""
    names = CookieNames.for_settings(settings)
    return [
        Cookie(
            key=name,
            value="",
            path="/",
            secure=settings.secure_cookies,
            httponly=name == names.session,
            samesite="lax",
            max_age=0,
            expires=0,
        )
        for name in (names.session, names.csrf)
    ]


def read_cookie(scope: Scope, name: str) -> str | None:
    """The value of cookie `name` in the request headers, or None when absent or empty."""
    # Browsers send `a=1; b=2`; split by hand (http.cookies drops every cookie after a bad one).
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for pair in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = pair.strip().partition("=")
                if cookie_name == name and cookie_value.strip('"'):
                    return cookie_value.strip('"')
    return None
