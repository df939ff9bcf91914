"""Errors as RFC 9457 problem+json, for every 4xx/5xx the service produces.

Exception tree (service code raises these; third-party errors are translated at the boundary):

    CortiwareError (500)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── Gone (410)
    ├── Unprocessable (422)
    ├── TooManyRequests (429)
    ├── UpstreamError (502)
    └── ServiceUnavailable (503)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Receive, Scope, Send

from cortiware.scope import request_id_of

__all__ = [
    "PROBLEM_JSON",
    "BadRequest",
    "Conflict",
    "CortiwareError",
    "Forbidden",
    "Gone",
    "InvalidField",
    "NotFound",
    "Problem",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "UpstreamError",
    "exception_handlers",
    "name_sentry_transaction",
    "problem_response",
    "send_problem",
]

PROBLEM_JSON = "application/problem+json"
_TITLES: Mapping[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
log = structlog.get_logger("cortiware.errors")


class InvalidField(msgspec.Struct, omit_defaults=True):
    """One rejected input of a 400 from request validation (never the value sent)."""

    message: str
    key: Annotated[str | None, msgspec.Meta(description="The parameter or body field.")] = None
    source: Annotated[
        str | None, msgspec.Meta(description="`body`, `query`, `path`, `header` or `cookie`.")
    ] = None


class Problem(msgspec.Struct, omit_defaults=True):
    """The body of every 4xx/5xx: RFC 9457 problem details, `application/problem+json`.

    Documentation of what `problem_response` sends; `cortiware.openapi` publishes it as the
    `Problem` schema. Extension members beyond these may be added; clients ignore unknown ones.
    """

    type: Annotated[str, msgspec.Meta(description="A URI; `about:blank` (see `title`).")]
    title: Annotated[str, msgspec.Meta(description="The HTTP status's standard phrase.")]
    status: Annotated[int, msgspec.Meta(ge=400, le=599, description="The HTTP status code.")]
    detail: Annotated[str, msgspec.Meta(description="What went wrong, for a human.")]
    instance: Annotated[
        str | None, msgspec.Meta(description="A URI of this occurrence (not sent today).")
    ] = None
    request_id: Annotated[
        str | None,
        msgspec.Meta(description="On a 500: the request id (as `X-Request-ID`) to quote."),
    ] = None
    errors: Annotated[
        list[InvalidField] | None,
        msgspec.Meta(description="On a 400 from request validation: each rejected input."),
    ] = None


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    """A problem+json response; `type` is `about:blank` with the status's standard title."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or title or _TITLES.get(status, "Error"),
    }
    if extra:
        body.update(extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer from an ASGI middleware with `problem_response(status, detail, headers=headers)`."""
    app = scope["litestar_app"]
    request = app.request_class(scope=scope, receive=receive)
    response = problem_response(status, detail, headers=headers)
    await response.to_asgi_response(None, request)(scope, receive, send)


class CortiwareError(Exception):
    """Base of every error the service raises on purpose; carries its HTTP status."""

    status_code: ClassVar[int] = HTTP_500_INTERNAL_SERVER_ERROR

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class BadRequest(CortiwareError):
    """The request is malformed."""

    status_code = 400


class Unauthorized(CortiwareError):
    """No valid session or credentials."""

    status_code = 401


class Forbidden(CortiwareError):
    """Authenticated, but not allowed (role, CSRF, origin)."""

    status_code = 403


class NotFound(CortiwareError):
    """No such resource."""

    status_code = 404


class Conflict(CortiwareError):
    """The request conflicts with the current state (duplicate, already used, in progress)."""

    status_code = 409


class Gone(CortiwareError):
    """The resource existed but has expired."""

    status_code = 410


class Unprocessable(CortiwareError):
    """Well-formed but semantically wrong."""

    status_code = 422


class TooManyRequests(CortiwareError):
    """A rate limit is exhausted."""

    status_code = 429


class UpstreamError(CortiwareError):
    """A dependency (Stripe) failed."""

    status_code = 502


class ServiceUnavailable(CortiwareError):
    """The service cannot answer right now."""

    status_code = 503


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    return request_id_of(request.scope)


def _on_cortiware_error(request: Request[Any, Any, Any], exc: CortiwareError) -> Response[Any]:
    return problem_response(exc.status_code, exc.detail, headers=exc.headers)


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if isinstance(exc, NotFoundException):
        # Litestar's own 404s (routing, static files) name file-system paths in their detail;
        # the service's 404s are `NotFound` and keep theirs.
        detail = None
    if status >= 500:
        return _on_unhandled(request, exc)
    extra: dict[str, Any] | None = None
    if isinstance(exc, ValidationException):
        # Litestar reports validation failures as 400 with per-field messages; keep the
        # messages (they describe the client's input) but never echo values back.
        errors = exc.extra if isinstance(exc.extra, list) else []
        extra = {
            "errors": [
                {k: e[k] for k in ("key", "message", "source") if isinstance(e, dict) and k in e}
                for e in errors
            ]
        }
    headers = dict(exc.headers or {})
    return problem_response(status, detail, headers=headers, extra=extra)


def name_sentry_transaction(scope: Scope) -> None:
    """Name the request's Sentry transaction (and its error events) by its route's template
    (`/api/provider/plans/{plan_id:uuid}`), as Sentry's Litestar integration did, rather
    than by its URL: one name per route, not per id. Called where a request's error is
    captured and when its response starts (within the request's Sentry scope)."""
    template = scope.get("path_template")
    name = str(template) if template else "<unmatched>"
    import sentry_sdk  # noqa: PLC0415 - loaded by the SDK's users only

    sentry_sdk.get_current_scope().set_transaction_name(name, source="route")


def _on_unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    request_id = _request_id(request)
    log.error("unhandled_exception", exc_info=exc, path=request.url.path)
    # Sentry's error event (nothing happens without SENTRY_DSN); the log line above is not
    # sent again (`ignore_logger` in `cortiware.app._init_sentry`). Imported here, as in
    # `_init_sentry`: only a 500 needs it.
    import sentry_sdk  # noqa: PLC0415

    name_sentry_transaction(request.scope)
    sentry_sdk.capture_exception(exc)
    return problem_response(
        500,
        "An unexpected error occurred. Quote the request id when reporting it.",
        extra={"request_id": request_id},
    )


exception_handlers: dict[type[Exception] | int, Any] = {
    CortiwareError: _on_cortiware_error,
    HTTPException: _on_http_exception,
    Exception: _on_unhandled,
}
