"""Reading a submitted form, and the CSRF token a rendered form must carry."""

from __future__ import annotations

import re
from typing import Any, Final

from litestar import Request
from litestar.datastructures import FormMultiDict

from cortiware.auth.cookies import CookieNames, csrf_token, read_cookie
from cortiware.auth.routes import settings_of
from cortiware.errors import BadRequest

__all__ = ["INVALID_FORM", "field_errors", "form_csrf_token", "page_error", "read_form"]


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


_AT_FIELD = re.compile(r"^(?P<what>.*?)(?: - at `\$\.(?P<field>\w+)(?:\[\d+\])?`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>\w+)`")
_FRIENDLY: Final = (
    (re.compile(r"^Expected `str` of length >= 1(?!\d)"), "Required."),
    (re.compile(r"^Expected `str` of length >= (\d+)"), "At least {0} characters."),
    (re.compile(r"^Expected `str` of length <= (\d+)"), "At most {0} characters."),
    (re.compile(r"^Expected `int` >= (-?\d+)"), "At least {0}."),
    (re.compile(r"^Expected `int` <= (-?\d+)"), "At most {0}."),
    (re.compile(r"^Expected `int`"), "Enter a whole number."),
    (re.compile(r"^Expected `bool`"), "Choose yes or no."),
    (re.compile(r"^Expected `str` matching regex"), "Not in the expected format (see the hint)."),
    (re.compile(r"^Invalid enum value"), "Choose one of the options."),
)
VALIDATION_PREFIX: Final = "Validation failed: "
INVALID_FORM: Final = "Please correct the marked fields."


def field_errors(detail: str) -> dict[str, str]:
    """`{field: message for a person}` from a validation failure's detail (else empty).

    Form commands turn their fields into the API's body type; a field that does not fit is
    reported by msgspec as "<what> - at `$.<field>`" (or "missing required field").
    """
    if not detail.startswith(VALIDATION_PREFIX):
        return {}
    text = detail.removeprefix(VALIDATION_PREFIX)
    if missing := _MISSING.match(text):
        return {missing["field"]: "Required."}
    found = _AT_FIELD.match(text)
    if found is None or not found["field"]:
        return {}
    what = found["what"]
    for pattern, message in _FRIENDLY:
        if matched := pattern.match(what):
            return {found["field"]: message.format(*matched.groups())}
    return {found["field"]: what}


def page_error(detail: str) -> str:
    """What the page says at the top: a pointer to the fields, or the detail itself."""
    return INVALID_FORM if field_errors(detail) else detail
