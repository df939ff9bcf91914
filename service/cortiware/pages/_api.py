"""Pages call the JSON API in-process, so a form does exactly what the API does.

Every form post and every page's data goes through the same routes, guards, validation,
audit rows, funnel events, rate limits and idempotency as a JSON client, by an ASGI
sub-request (httpx's `ASGITransport`) that carries the caller's session cookie, its CSRF
token, the service's own `Origin`, and the caller's address (resolved through
`TRUSTED_PROXIES`), user agent and request id. No
business logic is written twice, and the pages cannot drift from the contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import httpx
from litestar import Request
from litestar.datastructures import Cookie, FormMultiDict

from cortiware.auth.cookies import CookieNames, csrf_token, read_cookie
from cortiware.auth.routes import settings_of
from cortiware.errors import BadRequest
from cortiware.middleware.client_ip import client_ip

__all__ = ["ApiResult", "call_api", "form_csrf_token", "read_form"]


@dataclass(frozen=True, slots=True)
class ApiResult:
    """Status, decoded JSON body (or None) and the cookies the API set."""

    status: int
    body: Any
    cookies: list[Cookie] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The problem detail of an error answer, for showing on the page."""
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or self.status)
        return f"The request failed ({self.status})."


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


async def call_api(
    request: Request[Any, Any, Any],
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> ApiResult:
    """Send `method path` through the app as the caller of `request`."""
    settings = settings_of(request)
    names = CookieNames.for_settings(settings)
    # Bytes: httpx refuses a str header that is not ASCII, and a browser's User-Agent (or a
    # form's key) can hold any character; the API sees what the visitor sent.
    headers: dict[bytes, bytes] = {
        b"origin": settings.base_origin.encode(),
        b"accept": b"application/json",
    }
    if (agent := _raw_header(request, b"user-agent")) is not None:
        headers[b"user-agent"] = agent
    if request_id := request.scope.get("state", {}).get("request_id"):
        headers[b"x-request-id"] = str(request_id).encode()
    if session_id := read_cookie(request.scope, names.session):
        headers[b"cookie"] = f"{names.session}={session_id}".encode("latin-1")
        headers[b"x-csrf-token"] = csrf_token(settings.session_secret, session_id).encode()
    if method != "GET":
        # A form's key goes as sent; one that is not printable ASCII gets the API's 400.
        headers[b"idempotency-key"] = (idempotency_key or uuid.uuid4().hex).encode()
    # The sub-request's peer is the caller's resolved address (the right-most untrusted
    # `X-Forwarded-For` hop behind a trusted proxy), not the socket peer: behind the load
    # balancer the socket peer is the balancer, and every visitor would share its rate-limit
    # buckets, anonymous idempotency scope and audit IP.
    transport = httpx.ASGITransport(
        app=request.app,  # type: ignore[arg-type]  # Litestar's ASGI types are narrower TypedDicts
        client=(client_ip(request.scope, settings.trusted_proxies), 0),
    )
    async with httpx.AsyncClient(transport=transport, base_url=settings.base_origin) as client:
        response = await client.request(method, path, json=json, params=params, headers=headers)
    body: Any = None
    if response.content and "json" in response.headers.get("content-type", ""):
        body = response.json()
    return ApiResult(response.status_code, body, _cookies(response.headers.get_list("set-cookie")))


def _raw_header(request: Request[Any, Any, Any], name: bytes) -> bytes | None:
    for key, value in request.scope["headers"]:
        if key == name:
            return value
    return None


def _cookies(headers: list[str]) -> list[Cookie]:
    cookies: list[Cookie] = []
    for header in headers:
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for morsel in jar.values():
            max_age = morsel["max-age"]
            cookies.append(
                Cookie(
                    key=morsel.key,
                    value=morsel.value,
                    path=morsel["path"] or "/",
                    max_age=int(max_age) if max_age else None,
                    httponly=bool(morsel["httponly"]),
                    secure=bool(morsel["secure"]),
                    samesite=(morsel["samesite"] or "lax").lower(),  # type: ignore[arg-type]
                )
            )
    return cookies
