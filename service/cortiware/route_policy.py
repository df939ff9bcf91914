"""What request policy applies to a route, declared on the route itself (its `opt`).

The middleware (CSRF, input guard, rate limiting, idempotency) and the OpenAPI description
read a route's declaration from `scope["route_handler"].opt`; none of them knows a path.
Litestar merges `opt` from the app, routers and controllers down to the handler (the
closest wins), so a router can declare for all of its routes::

    @post("/login", opt=declare(rate_limit=GroupName.AUTH, errors={401: "Invalid password."}))
    @post("/api/webhooks/stripe", opt=SIGNED_WEBHOOK | declare(errors={400: "Bad signature."}))
    Router(path="/", route_handlers=[...], opt=PAGE)

Undeclared, a route gets the API's policy: CSRF checks on unsafe methods, every input check,
the `default` rate-limit group, and an optional `Idempotency-Key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "PAGE",
    "PROBE",
    "SIGNED_WEBHOOK",
    "UNLIMITED",
    "GroupName",
    "Idempotency",
    "InputCheck",
    "RoutePolicy",
    "declare",
    "is_generated_options",
    "policy_of",
    "share_with_preflights",
]


class GroupName(StrEnum):
    """The rate-limit groups of the contract."""

    AUTH = "auth"
    ONBOARDING = "onboarding"
    DEFAULT = "default"


class Idempotency(StrEnum):
    """How a route treats `Idempotency-Key` on POST, PUT, PATCH and DELETE."""

    OPTIONAL = "optional"
    """Honoured when sent."""
    REQUIRED = "required"
    """Must be sent (400 without)."""
    EXEMPT = "exempt"
    """Ignored: the route has its own duplicate detection (or is not part of the API)."""


class InputCheck(StrEnum):
    """What `InputGuardMiddleware` checks on a route."""

    FULL = "full"
    """NUL characters in path, query and body; the body's UTF-8 and JSON depth."""
    URL = "url"
    """NUL characters in the path and query only."""
    NONE = "none"
    """Nothing: the route verifies its raw body itself (a signature) and stores it as sent."""


_CSRF: Final = "cortiware_csrf"
_RATE_LIMIT: Final = "cortiware_rate_limit"
_IDEMPOTENCY: Final = "cortiware_idempotency"
_INPUT: Final = "cortiware_input"
_SESSION: Final = "cortiware_session"
_ERRORS: Final = "cortiware_errors"
_HEADERS: Final = "cortiware_request_headers"
_ACCESS_LOG: Final = "cortiware_access_log"
_RESOLVED: Final = "cortiware_policy"
_UNSET: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """One route's declared policy, defaults filled in."""

    csrf: bool = True
    """CSRF checks (origin, fetch metadata, session token) on unsafe methods."""
    rate_limit: GroupName | None = GroupName.DEFAULT
    """The rate-limit group, or None when not limited."""
    idempotency: Idempotency = Idempotency.OPTIONAL
    input_check: InputCheck = InputCheck.FULL
    session: bool = True
    """Whether the caller's session is read (its principal put into the scope). False only
    on routes that answer everyone alike, limit no one and take no keys: the health probes."""
    errors: Mapping[int, str] = field(default_factory=dict)
    """The errors the handler itself answers: status to why (for the OpenAPI description)."""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers the handler requires: name to meaning (for the OpenAPI description)."""
    access_log: bool = True
    """False: the route's fast successful reads get no access line (as if sampled at 0);
    its errors, slow answers and other methods still do, and the metrics count every
    request. The health probes: the load balancer, the container and the canary ask them
    every few seconds, a line each told nobody anything."""


_DEFAULT: Final = RoutePolicy()


def declare(
    *,
    csrf: bool = _UNSET,
    rate_limit: GroupName | None = _UNSET,
    idempotency: Idempotency = _UNSET,
    input_check: InputCheck = _UNSET,
    session: bool = _UNSET,
    errors: Mapping[int, str] = _UNSET,
    request_headers: Mapping[str, str] = _UNSET,
    access_log: bool = _UNSET,
) -> dict[str, Any]:
    """The `opt` entries declaring the policy given (what is left out keeps its default)."""
    given = {
        _CSRF: csrf,
        _RATE_LIMIT: rate_limit,
        _IDEMPOTENCY: idempotency,
        _INPUT: input_check,
        _SESSION: session,
        _ERRORS: errors,
        _HEADERS: request_headers,
        _ACCESS_LOG: access_log,
    }
    return {key: value for key, value in given.items() if value is not _UNSET}


def policy_of(handler: Any) -> RoutePolicy:
    """The policy `handler` (a route handler, or None before routing) declares."""
    opt: dict[str, Any] | None = getattr(handler, "opt", None)
    if not opt:
        return _DEFAULT
    resolved = opt.get(_RESOLVED)
    if not isinstance(resolved, RoutePolicy):
        # Kept in the handler's own (resolved) `opt`: read on every request by four layers.
        resolved = opt[_RESOLVED] = _read(opt)
    return resolved


def _read(opt: Mapping[str, Any]) -> RoutePolicy:
    return RoutePolicy(
        csrf=opt.get(_CSRF, _DEFAULT.csrf),
        rate_limit=opt.get(_RATE_LIMIT, _DEFAULT.rate_limit),
        idempotency=opt.get(_IDEMPOTENCY, _DEFAULT.idempotency),
        input_check=opt.get(_INPUT, _DEFAULT.input_check),
        session=opt.get(_SESSION, _DEFAULT.session),
        errors=opt.get(_ERRORS, _DEFAULT.errors),
        request_headers=opt.get(_HEADERS, _DEFAULT.request_headers),
        access_log=opt.get(_ACCESS_LOG, _DEFAULT.access_log),
    )


def share_with_preflights(routes: Iterable[Any]) -> None:
    """Give Litestar's own OPTIONS handler of each path the policy its path's handlers share.

    Litestar answers OPTIONS on every path with a handler it generates, without `opt`; this
    way a preflight to a webhook is no more limited or checked than the webhook itself.
    """
    for route in routes:
        handlers = list(getattr(route, "route_handlers", ()))
        generated = [h for h in handlers if is_generated_options(h)]
        declared = {
            tuple(sorted((k, repr(v)) for k, v in _policy_opt(h).items()))
            for h in handlers
            if not is_generated_options(h)
        }
        if len(declared) != 1:
            continue  # no handler, or handlers that differ: the default applies
        shared = _policy_opt(next(h for h in handlers if not is_generated_options(h)))
        for handler in generated:
            handler.opt.update(shared)
            handler.opt.pop(_RESOLVED, None)


_POLICY_KEYS: Final = frozenset({_CSRF, _RATE_LIMIT, _IDEMPOTENCY, _INPUT, _SESSION})


def _policy_opt(handler: Any) -> dict[str, Any]:
    return {k: v for k, v in (handler.opt or {}).items() if k in _POLICY_KEYS}


def is_generated_options(handler: Any) -> bool:
    """Whether `handler` is the OPTIONS handler Litestar adds to every path (the `Allow` list)."""
    return set(handler.http_methods) == {"OPTIONS"} and not handler.include_in_schema


SIGNED_WEBHOOK: Final = declare(
    csrf=False, rate_limit=None, idempotency=Idempotency.EXEMPT, input_check=InputCheck.NONE
)
"""A webhook: authenticated by its signature over the raw body, which is stored as sent, and
deduplicated by its event id; so no CSRF, input checks, rate limit or `Idempotency-Key`."""
PAGE: Final = declare(rate_limit=None, idempotency=Idempotency.EXEMPT, input_check=InputCheck.URL)
"""A server-rendered page or static file: CSRF-checked forms, no API limits or keys."""
UNLIMITED: Final = declare(rate_limit=None)
"""A route no rate limit applies to."""
PROBE: Final = declare(
    rate_limit=None, input_check=InputCheck.NONE, session=False, access_log=False
)
"""A health probe (load balancer, container, canary): never limited, the same for every
caller (no session read), and it reads nothing of the request (no body, no query, no path
parameter), so there is no input to check: no stage of the request pipeline has work on it.
Its fast successful answers get no access line (its failures and slow answers do)."""
