"""`IdempotencyMiddleware`: `Idempotency-Key` on POST/PUT/PATCH/DELETE.

Each route declares whether a key is optional (the default), required, or ignored
(`idempotency=` in `cortiware.route_policy`; pages and the signed webhooks ignore it).

Scope of a key: the principal and its session (`scope["cortiware_principal"]` and the
session id, hashed), else the client IP; the route template and the key. So a key replays
only within the session that first used it: after a logout and a new login, a reused key
runs again. Fingerprint: method, path, sorted query, SHA-256 of the body and that scope; so
a key reused with another method, path, query or body is 422.

- first request: runs; a response below 500 is stored (status, selected headers, body) for
  24 h before its last body chunk is sent, so a retry that follows the response replays it;
  a response that sets cookies (login, logout) is not stored and releases the key: its
  cookies cannot be replayed, and a replay without them would leave the caller with the
  wrong session (or a stale CSRF token);
- repeat with the same fingerprint: the stored response + `Idempotent-Replayed: true`;
- repeat while the first still runs: 409 with `Retry-After`;
- a 5xx (before its response starts), an exception or a cancelled request releases the key,
  so a retry runs again;
- Redis timed out on the claim and stayed silent for `SETTLE_WAIT` (it may hold the claim;
  see `store`): 503 with `Retry-After`, nothing runs, and a retry with the same key runs or
  replays once Redis answers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import parse_qsl

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from cortiware import metrics
from cortiware.app_state import StateKey
from cortiware.auth.middleware import session_id_of
from cortiware.errors import send_problem
from cortiware.idempotency.store import (
    ClaimOutcome,
    IdempotencyStore,
    LimitCheck,
    StoredResponse,
)
from cortiware.middleware.client_ip import IPNetwork, client_ip
from cortiware.ratelimit.middleware import DeferredLimit
from cortiware.route_policy import Idempotency, policy_of
from cortiware.scope import DEFERRED_LIMIT_SCOPE_KEY, principal_id_of

__all__ = [
    "IDEMPOTENCY_STORE",
    "IdempotencyMiddleware",
    "key_owner",
    "takes_claim",
    "valid_key",
]

IDEMPOTENCY_STORE: Final = StateKey("idempotency", IdempotencyStore)
"""`app.state` entry of the `IdempotencyStore`, created in the app lifespan."""
_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Headers worth replaying; cookies and rate-limit headers are per-request, never replayed.
_KEPT_HEADERS: Final = frozenset(
    {
        b"content-type",
        b"content-language",
        b"location",
        b"etag",
        b"last-modified",
        b"cache-control",
    }
)

_replayed = metrics.counter("idempotency.replayed")
_conflict = metrics.counter("idempotency.conflict")
_mismatch = metrics.counter("idempotency.mismatch")
_released = metrics.counter("idempotency.released")
_taken_over = metrics.counter("idempotency.taken_over")


def valid_key(key: str) -> bool:
    """True for 1-255 printable ASCII characters."""
    return 1 <= len(key) <= 255 and key.isascii() and key.isprintable()


def takes_claim(scope: Scope) -> bool:
    """True when `IdempotencyMiddleware` will claim a key for this request.

    `RateLimitMiddleware(defer=takes_claim)` then leaves its decision to the claim script.
    """
    if scope.get("method") not in _METHODS or _rule(scope) is Idempotency.EXEMPT:
        return False
    raw = _header(scope, b"idempotency-key")
    return raw is not None and valid_key(raw.decode("latin-1"))


def _rule(scope: Scope) -> Idempotency:
    return policy_of(scope.get("route_handler")).idempotency


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def key_owner(scope: Any, trusted_proxies: Sequence[IPNetwork] = ()) -> str:
    """Whose keys a request's key is one of: the principal and its session, else the client
    IP (also used by the pages' form keys)."""
    principal = principal_id_of(scope)
    who = f"p:{principal}" if principal else f"ip:{client_ip(scope, trusted_proxies)}"
    if session_id := session_id_of(scope):
        who += ":s:" + hashlib.sha256(session_id.encode()).hexdigest()[:32]
    return who


def _guarded(scope: Scope) -> bool:
    """True when the matched route handler has guards (it requires a logged-in role)."""
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.resolve_guards())


def fingerprint(method: str, path: str, query: bytes, body: bytes, principal: str) -> str:
    """SHA-256 over what makes two requests "the same" (query parameters order-free)."""
    pairs = sorted(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    digest = hashlib.sha256()
    for part in (method, path, repr(pairs), hashlib.sha256(body).hexdigest(), principal):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


class IdempotencyMiddleware(ASGIMiddleware):
    """Make unsafe requests carrying `Idempotency-Key` run at most once."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self.trusted_proxies = tuple(trusted_proxies)

    def applies_to(self, handler: Any) -> bool:
        """Whether `handler`'s route takes a method keys apply to and honours them
        (`RequestPipeline`)."""
        rule = policy_of(handler).idempotency
        return rule is not Idempotency.EXEMPT and not _METHODS.isdisjoint(handler.http_methods)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Claim the key, then run, replay, or refuse with 400, 409 or 422."""
        method: str = scope["method"]  # type: ignore[typeddict-item]
        rule = _rule(scope)
        if method not in _METHODS or rule is Idempotency.EXEMPT:
            await next_app(scope, receive, send)
            return
        if principal_id_of(scope) is None and _guarded(scope):
            # Nobody to run it for: the route's guard answers 401 before any key is judged
            # (or kept), so an anonymous caller learns nothing about keys.
            await next_app(scope, receive, send)
            return
        raw = _header(scope, b"idempotency-key")
        if raw is None:
            if rule is Idempotency.REQUIRED:
                await send_problem(
                    scope, receive, send, 400, "This request requires an Idempotency-Key header."
                )
                return
            await next_app(scope, receive, send)
            return
        key = raw.decode("latin-1")
        if not valid_key(key):
            await send_problem(
                scope,
                receive,
                send,
                400,
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            )
            return
        await self._run(scope, receive, send, next_app, method=method, key=key)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        *,
        method: str,
        key: str,
    ) -> None:
        store = IDEMPOTENCY_STORE.get(scope["litestar_app"])
        who = key_owner(scope, self.trusted_proxies)
        route: str = scope.get("path_template") or scope["path"]
        body = await scope["litestar_app"].request_class(scope=scope, receive=receive).body()
        record_key = hashlib.sha256(f"{who}\x00{route}\x00{key}".encode()).hexdigest()
        deferred: DeferredLimit | None = scope.pop(DEFERRED_LIMIT_SCOPE_KEY, None)  # type: ignore[typeddict-item]
        limit = (
            LimitCheck(deferred.limiter, deferred.bucket, deferred.limit, deferred.period)
            if deferred is not None
            else None
        )
        claim = await store.claim(
            record_key,
            fingerprint(method, scope["path"], scope["query_string"], body, who),
            limit,
        )
        if deferred is not None:
            deferred.decision = claim.decision
        if claim.outcome is ClaimOutcome.LIMITED:
            return  # `RateLimitMiddleware` answers 429
        if claim.outcome is ClaimOutcome.COMPLETED:
            assert claim.response is not None
            _replayed.inc()
            await _replay(send, claim.response)
            return
        if claim.outcome is ClaimOutcome.MISMATCH:
            _mismatch.inc()
            await send_problem(
                scope,
                receive,
                send,
                422,
                "This Idempotency-Key was already used with a different request.",
            )
            return
        if claim.outcome is ClaimOutcome.UNREADABLE:
            await send_problem(
                scope,
                receive,
                send,
                422,
                "This Idempotency-Key was already used, and its stored response can no longer"
                " be read (the service's secret changed); use a new key.",
            )
            return
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            _conflict.inc()
            retry = str(max(1, math.ceil(min(claim.retry_after, 1.0))))
            await send_problem(
                scope,
                receive,
                send,
                409,
                "A request with this Idempotency-Key is still being processed.",
                headers={"Retry-After": retry},
            )
            return
        if claim.outcome is ClaimOutcome.UNAVAILABLE:
            await send_problem(
                scope,
                receive,
                send,
                503,
                "The idempotency store did not answer in time; retry with the same key.",
                headers={"Retry-After": str(max(1, math.ceil(claim.retry_after)))},
            )
            return
        if claim.outcome is ClaimOutcome.TAKEN_OVER:
            _taken_over.inc()
        assert claim.token is not None
        await _execute(
            scope, receive, send, next_app, store=store, record_key=record_key, token=claim.token
        )


async def _execute(
    scope: Scope,
    receive: Receive,
    send: Send,
    next_app: ASGIApp,
    *,
    store: IdempotencyStore,
    record_key: str,
    token: str,
) -> None:
    status = 500
    kept: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    settled = False
    sets_cookie = False

    async def capture(message: Message) -> None:
        nonlocal status, settled, sets_cookie
        if message["type"] == "http.response.start":
            status = message["status"]
            sets_cookie = any(k.lower() == b"set-cookie" for k, _ in message.get("headers", ()))
            if status >= 500:
                # Release before the client can see the 5xx: its retry (after `Retry-After`)
                # must find the key free, not still "being processed" on a slow host.
                settled = True
                _released.inc()
                await store.release(record_key, token)
            kept.extend(
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in message.get("headers", ())
                if k.lower() in _KEPT_HEADERS
            )
        elif message["type"] == "http.response.body" and status < 500 and not sets_cookie:
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                response = StoredResponse(status, kept, b"".join(chunks))
                await store.complete(record_key, token, response)
                settled = True
        await send(message)

    try:
        await next_app(scope, receive, capture)
    finally:
        if not settled:
            _released.inc()
            await store.release(record_key, token)


async def _replay(send: Send, response: StoredResponse) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
    ]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
