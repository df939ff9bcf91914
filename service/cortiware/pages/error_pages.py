"""Error pages for people: outside `/api/`, a 4xx/5xx is an HTML page, not problem+json.

`html_outside_api` wraps the app's exception handlers (which build the problem+json
answer) so that the status, detail and headers (`Allow`, `Retry-After`...) stay exactly
what the API would say, and only the body changes for a page, an unknown path or a form
refused by the CSRF check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from litestar import Request, Response
from litestar.response import Template

from cortiware.auth.principal import principal_of
from cortiware.pages._headers import PAGE_HEADERS

__all__ = ["API_PREFIX", "error_page", "html_outside_api"]

API_PREFIX: Final = "/api/"
_NOT_PAGES: Final = (API_PREFIX, "/static/")  # programs and assets, not people, read these
Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def error_page(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Template:
    """`error.html` for `status`, with what happened and where to go next."""
    return Template(
        template_name="error.html",
        context={
            "status": status,
            "message": message,
            "request_id": request_id,
            "principal": principal_of(request),
        },
        status_code=status,
        headers={**(headers or {}), **PAGE_HEADERS, "Cache-Control": "no-store"},
    )


def html_outside_api(handlers: Mapping[Any, Handler]) -> dict[Any, Handler]:
    """The same handlers, answering `error.html` for any path outside `/api/` and `/static/`."""
    return {key: _as_page(handler) for key, handler in handlers.items()}


def _as_page(handler: Handler) -> Handler:
    def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
        problem = handler(request, exc)
        if request.url.path.startswith(_NOT_PAGES):
            return problem
        body = problem.content if isinstance(problem.content, dict) else {}
        headers = {
            key: value
            for key, value in problem.headers.items()
            if key.lower() not in ("content-type", "content-length")
        }
        return error_page(
            request,
            problem.status_code or 500,
            str(body.get("detail") or ""),
            headers=headers,
            request_id=body.get("request_id"),
        )

    return handle
