"""Request id (on every log line of the request), per-route-group metrics, Sentry's user
context and one access-log line per request (sampled, or left out on quiet routes, only for
fast successful reads)."""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

import sentry_sdk
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from cortiware import metrics
from cortiware.auth.principal import Principal
from cortiware.errors import name_sentry_transaction
from cortiware.logging import REQUEST_ID, access_log
from cortiware.route_policy import policy_of
from cortiware.scope import PRINCIPAL_SCOPE_KEY, REQUEST_ID_STATE_KEY

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "new_request_id",
    "route_group",
    "sentry_user",
]

REQUEST_ID_HEADER = "X-Request-ID"
# A caller-supplied id is kept only when it is short and harmless in logs.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_REQUEST_ID_RAW: Final = REQUEST_ID_HEADER.lower().encode()
_FACTS_OPT: Final = "cortiware_route_facts"
FAST_MS: Final = 100.0
"""A successful read answered faster than this may be left out of the access log (sampled)."""
_READS: Final = frozenset({"GET", "HEAD"})
_SAMPLING: Final = random.Random()  # noqa: S311 - sampling, not security
"""Access-line sampling's own generator (not the `random` module's shared, seedable one)."""


_ID_BYTES: Final = 16
_POOL_BYTES: Final = 256 * _ID_BYTES


class _RandomPool:
    """Random bytes from `os.urandom`, read 4 KiB at a time: one `getrandom` system call
    per 256 request ids instead of one per request. Emptied in a forked child, which must
    not hand out its parent's remaining bytes."""

    __slots__ = ("_at", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._pool):
            self._pool = os.urandom(_POOL_BYTES)
            self._at = 0
        start = self._at
        self._at = start + size
        return self._pool[start : self._at]

    def empty(self) -> None:
        self._pool = b""
        self._at = 0


_POOL: Final = _RandomPool()
os.register_at_fork(after_in_child=_POOL.empty)


def new_request_id() -> str:
    """128 random bits (from `os.urandom`) in hex, as `uuid4().hex` was."""
    return _POOL.take(_ID_BYTES).hex()


class RequestContextMiddleware(ASGIMiddleware):
    """Give every request an id (echoed in `X-Request-ID`) bound to every log line.

    `access_log_sample_rate` (ACCESS_LOG_SAMPLE_RATE) below 1 writes only that share of the
    access lines of fast successful reads (GET/HEAD, status below 400, under `FAST_MS`);
    errors, slow requests and writes are always logged, and the metrics count every request.
    A route declaring `access_log=False` (the health probes) has its fast successful reads
    left out whatever the rate.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        access_log_sample_rate: float = 1.0,
        response_start: Sequence[Callable[[HTTPResponseStartEvent, Scope], None]] = (),
    ) -> None:
        self.sample_rate = access_log_sample_rate
        self.response_start = tuple(response_start)
        """Called with each response's start message (to edit its headers) before it goes;
        its `headers` are then a list of this request's own, to edit in place."""
        self.sentry = sentry_sdk.get_client().is_active()
        """Whether Sentry was initialised when the middleware was made (`create_app` does it
        first): asked once, not on every request."""

    def around(self, app: ASGIApp) -> ASGIApp:
        """`app` (an application's whole ASGI handler) run inside this middleware.

        The service runs it there, around routing: it then also times, logs and labels
        what no route answers (the router's 404 and 405), and its one `send` wrapper does
        the response-header work Litestar's `before_send` hooks did in a wrapper of their
        own (in-process, 2 µs of a 90 µs `GET /api/health/live`).
        """
        # `partial` rather than a closure: one frame less (`handle` checks the scope type).
        return partial(self.handle, next_app=app)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Bind the id, call the app, log method, path, status and duration.

        One coroutine for all of it (it runs on every request: each frame and wrapper less
        is measurable, `python -m benchmarks.inprocess`).
        """
        if scope["type"] != ScopeType.HTTP:
            await next_app(scope, receive, send)
            return
        incoming = _header(scope, _REQUEST_ID_RAW)
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else new_request_id()
        raw_id = request_id.encode()
        scope.setdefault("state", {})[REQUEST_ID_STATE_KEY] = request_id
        # Reset through its token at the end (the request's task may run on in the same
        # context: a background task it started copies it at creation, not here).
        bound = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        response_start = self.response_start
        sentry = self.sentry

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # This request's own list (the app's may be shared, a cached response's).
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _REQUEST_ID_RAW]
                headers.append((_REQUEST_ID_RAW, raw_id))
                message["headers"] = headers
                for edit in response_start:
                    edit(message, scope)
                if sentry:
                    name_sentry_transaction(scope)
            await send(message)

        try:
            if self.sentry:
                # A request's own isolation scope, made here: around routing this runs before
                # Sentry's middleware (route level) has made one, and a processor added to
                # the shared one would outlive the request. Sentry's scope forks from this
                # one, processor included, which reads the principal when an event is sent
                # (after the session middleware found it).
                with sentry_sdk.isolation_scope() as isolation:
                    isolation.add_event_processor(lambda event, _hint: _with_user(event, scope))
                    await next_app(scope, receive, send_wrapper)
            else:
                await next_app(scope, receive, send_wrapper)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            group, logged = _route_facts(scope)
            _record(group, status, duration_ms)
            method = scope.get("method")
            if (
                status >= 400
                or duration_ms >= FAST_MS
                or method not in _READS
                or (logged and (self.sample_rate >= 1.0 or _SAMPLING.random() < self.sample_rate))
            ):
                access_log.line(method, scope.get("path"), status, duration_ms)
            REQUEST_ID.reset(bound)


_LATENCY_NAMES: dict[str, str] = {}
_STATUS_COUNTERS: dict[tuple[str, int], metrics.Counter] = {}


def _record(group: str, status: int, duration_ms: float) -> None:
    """`http.<group>.latency_ms` and `http.<group>.<n>xx`, names built once per group and
    status class (they are few; requests are many)."""
    latency = _LATENCY_NAMES.get(group)
    if latency is None:
        latency = _LATENCY_NAMES[group] = f"http.{group}.latency_ms"
    metrics.observe(latency, duration_ms)
    key = (group, status // 100)
    counter = _STATUS_COUNTERS.get(key)
    if counter is None:
        counter = _STATUS_COUNTERS[key] = metrics.counter(f"http.{group}.{key[1]}xx")
    counter.inc()


def sentry_user(principal: Principal) -> dict[str, str]:
    """Sentry's user context: an id and the role, never an e-mail address (an owner's
    username is one, so owners are identified by their owner id)."""
    if principal.owner_id is not None:
        identifier = str(principal.owner_id)
    else:
        identifier = f"{principal.role.value}:{principal.username}"
    return {"id": identifier, "role": principal.role.value}


def _with_user(event: Any, scope: Scope) -> Any:
    principal = dict(scope).get(PRINCIPAL_SCOPE_KEY)
    if isinstance(principal, Principal):
        event["user"] = sentry_user(principal)
    else:
        event.pop("user", None)
    return event


def route_group(scope: Scope) -> str:
    """The metric group of a request: `api.<first segment>` of its route's path under
    `/api/` (`api.onboarding`, `api.webhooks`), `pages` for other routes, `unmatched` when no
    route answered (404s), so the number of metric names stays bounded."""
    return _route_facts(scope)[0]


_UNMATCHED: Final = ("unmatched", True)


def _route_facts(scope: Scope) -> tuple[str, bool]:
    """The route's metric group, and whether its fast successful reads are access-logged
    (`RoutePolicy.access_log`): read on every request, so kept in the handler's resolved
    `opt` after the first."""
    handler: Any = scope.get("route_handler")
    opt: dict[str, Any] | None = getattr(handler, "opt", None)
    if opt is None:
        return _UNMATCHED if handler is None else (_group_of(handler), True)
    facts: tuple[str, bool] | None = opt.get(_FACTS_OPT)
    if facts is None:
        facts = opt[_FACTS_OPT] = (_group_of(handler), policy_of(handler).access_log)
    return facts


def _group_of(handler: Any) -> str:
    paths = sorted(getattr(handler, "paths", None) or ())
    if not paths:
        return "unmatched"
    segments = [s for s in paths[0].split("/") if s]
    if segments[:1] == ["api"]:
        return f"api.{segments[1]}" if len(segments) > 1 else "api"
    return "pages"


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Any = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None
