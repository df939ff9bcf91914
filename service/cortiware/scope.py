"""Every key the service adds to an ASGI scope, and typed readers for them.

| key                               | value                    | set by                     |
| --------------------------------- | ------------------------ | -------------------------- |
| `PRINCIPAL_SCOPE_KEY`             | the caller's `Principal` | `SessionMiddleware`        |
| `PRINCIPAL_ID_SCOPE_KEY`          | its id (`role:username`) | `SessionMiddleware`        |
| `SESSION_ID_SCOPE_KEY`            | the live session's id    | `SessionMiddleware`        |
| `DEFERRED_LIMIT_SCOPE_KEY`        | a `DeferredLimit`        | `RateLimitMiddleware`      |
| `state` / `REQUEST_ID_STATE_KEY`  | the request's id         | `RequestContextMiddleware` |

Rate limiting and idempotency key their state by the principal id, so the session
middleware runs before them. `scope["state"]` is Litestar's own per-request state; the request
id lives there so `Request.state.request_id` reads it too.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "DEFERRED_LIMIT_SCOPE_KEY",
    "PRINCIPAL_ID_SCOPE_KEY",
    "PRINCIPAL_SCOPE_KEY",
    "REQUEST_ID_STATE_KEY",
    "SESSION_ID_SCOPE_KEY",
    "principal_id_of",
    "request_id_of",
    "session_id_of",
]

PRINCIPAL_SCOPE_KEY: Final = "cortiware_principal"
"""The authenticated `Principal` (absent when anonymous)."""
PRINCIPAL_ID_SCOPE_KEY: Final = "cortiware_principal_id"
"""The principal's stable id string, which rate-limit buckets and idempotency scopes use."""
SESSION_ID_SCOPE_KEY: Final = "cortiware_session_id"
"""The id of the request's live session (absent when anonymous)."""
DEFERRED_LIMIT_SCOPE_KEY: Final = "cortiware_deferred_limit"
"""The `DeferredLimit` a downstream idempotency claim must decide."""
REQUEST_ID_STATE_KEY: Final = "request_id"
"""Key in `scope["state"]` of the request's id (echoed in `X-Request-ID`)."""


def _str_at(scope: Any, key: str) -> str | None:
    value = scope.get(key)
    return value if isinstance(value, str) and value else None


def principal_id_of(scope: Any) -> str | None:
    """The authenticated principal's id in `scope`, if any."""
    return _str_at(scope, PRINCIPAL_ID_SCOPE_KEY)


def session_id_of(scope: Any) -> str | None:
    """The id of the live session of this request, if any."""
    return _str_at(scope, SESSION_ID_SCOPE_KEY)


def request_id_of(scope: Any) -> str | None:
    """The request's id, once `RequestContextMiddleware` has set it."""
    state = scope.get("state")
    return _str_at(state, REQUEST_ID_STATE_KEY) if isinstance(state, dict) else None
