"""`RateLimitMiddleware`: one GCRA decision per limited request, headers on every response.

Litestar's own `RateLimitMiddleware` is not used: it reads then writes a timestamp list
(GET + SET), so concurrent workers over-admit (litestar issue #4700); its window is fixed
and anchored at the first hit; it sends no `Retry-After`; and a Redis error becomes a 500.

The principal of a logged-in request is its id (`principal_id_of`, a string such as
`"provider:alice"`): the authentication layer sets it in a middleware that runs before
this one. Without it the
bucket is the client IP (an IPv6 client's /64: `rate_limit_subject`).

Deferral: for a request the idempotency middleware will claim (`defer(scope)` true), the
decision is not taken here but handed on in the scope (`DEFERRED_LIMIT_SCOPE_KEY`, a
`DeferredLimit`); the claim script decides the limit first in the same round trip, records
the decision on it, and on a refusal returns without running or answering, so this
middleware sends the 429. Same GCRA, same bucket, same headers: one round trip less.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from cortiware import metrics
from cortiware.app_state import StateKey
from cortiware.errors import send_problem
from cortiware.middleware.client_ip import IPNetwork, client_ip
from cortiware.ratelimit.gcra import Decision, GCRALimiter
from cortiware.ratelimit.headers import rate_limit_headers
from cortiware.ratelimit.policy import GroupName, RateLimitPolicy, rate_limit_subject
from cortiware.route_policy import policy_of
from cortiware.scope import DEFERRED_LIMIT_SCOPE_KEY, principal_id_of
from cortiware.settings import RateLimitSpec

__all__ = [
    "RATE_LIMITER",
    "DeferredLimit",
    "RateLimitMiddleware",
    "bucket_key",
]

RATE_LIMITER: Final = StateKey("rate_limiter", GCRALimiter)
"""`app.state` entry of the `GCRALimiter`, created in the app lifespan."""


@dataclass(slots=True)
class DeferredLimit:
    """A rate-limit decision left to the idempotency claim (see the module docstring)."""

    limiter: GCRALimiter
    bucket: str
    limit: int
    period: float
    decision: Decision | None = None
    """Set by whoever took the decision."""


_limited = metrics.counter("ratelimit.limited")
_allowed = metrics.counter("ratelimit.allowed")


def spraying_bucket(client: str) -> str:
    """The bucket every login attempt from `client` counts against, whatever the username.

    The `auth` group's own bucket is per IP and username, so without this one a sprayer
    trying one password on many usernames is never limited (and makes the service hash a
    password for each try)."""
    return f"auth-ip:{rate_limit_subject(client)}"


def bucket_key(group: GroupName, *, client: str, principal: str | None, username: str) -> str:
    """The bucket a request counts against in `group` (also used by the pages' forms).

    `client` is the resolved client address, `principal` the scope's principal id,
    `username` the login name tried (AUTH only).
    """
    ip = rate_limit_subject(client)
    if group is GroupName.AUTH:
        # Hashed so usernames (owner e-mails) never appear in Redis keys.
        user = hashlib.sha256(username.strip().lower().encode()).hexdigest()
        return f"auth:{ip}:{user[:32]}"
    if group is GroupName.ONBOARDING:
        return f"onboarding:{ip}"
    return f"default:p:{principal}" if principal else f"default:ip:{ip}"


async def _login_username(scope: Scope, receive: Receive) -> str:
    # Litestar caches the body in the connection state, so the handler can read it again.
    request = scope["litestar_app"].request_class(scope=scope, receive=receive)
    try:
        data = msgspec.json.decode(await request.body())
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return ""  # the handler answers the bad body with its 400
    username = data.get("username") if isinstance(data, dict) else None
    return username.strip().lower() if isinstance(username, str) else ""


class RateLimitMiddleware(ASGIMiddleware):
    """Apply the rate-limit group each route declares (`cortiware.route_policy`)."""

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        policy: RateLimitPolicy,
        trusted_proxies: Sequence[IPNetwork] = (),
        defer: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.policy = policy
        self.trusted_proxies = tuple(trusted_proxies)
        self.defer = defer

    def applies_to(self, handler: Any) -> bool:
        """Whether `handler`'s route is limited (`RequestPipeline`)."""
        return self.policy.enabled and policy_of(handler).rate_limit is not None

    def bucket(self, group: GroupName, scope: Scope, username: str) -> str:
        """The bucket key of this request within `group` (`username`: the login tried)."""
        return bucket_key(
            group,
            client=client_ip(scope, self.trusted_proxies),
            principal=principal_id_of(scope),
            username=username,
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Decide, then answer 429 or pass on with the rate-limit headers added."""
        group = policy_of(scope.get("route_handler")).rate_limit
        if group is None or not self.policy.enabled:
            await next_app(scope, receive, send)
            return
        limiter = RATE_LIMITER.get(scope["litestar_app"])
        username = ""
        if group is GroupName.AUTH:
            ip_spec = self.policy.auth_ip
            client = client_ip(scope, self.trusted_proxies)
            ip = await limiter.hit(spraying_bucket(client), ip_spec.limit, ip_spec.period)
            if not ip.allowed:
                headers = rate_limit_headers(group.value, ip_spec.period, ip)
                await _refuse(scope, receive, send, group=group, spec=ip_spec, headers=headers)
                return
            # Only a login's bucket needs the body; the rest are decided without reading it.
            username = await _login_username(scope, receive)
        spec = self.policy.spec(group)
        bucket = self.bucket(group, scope, username)
        if self.defer is not None and self.defer(scope):
            await self._deferred(
                scope,
                receive,
                send,
                next_app,
                limiter=limiter,
                bucket=bucket,
                group=group,
                spec=spec,
            )
            return
        decision = await limiter.hit(bucket, spec.limit, spec.period)
        headers = rate_limit_headers(group.value, spec.period, decision)
        if not decision.allowed:
            await _refuse(scope, receive, send, group=group, spec=spec, headers=headers)
            return
        _allowed.inc()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await next_app(scope, receive, send_with_headers)

    async def _deferred(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        *,
        limiter: GCRALimiter,
        bucket: str,
        group: GroupName,
        spec: RateLimitSpec,
    ) -> None:
        slot = DeferredLimit(limiter, bucket, spec.limit, spec.period)
        scope[DEFERRED_LIMIT_SCOPE_KEY] = slot  # type: ignore[typeddict-unknown-key]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if slot.decision is None:  # nobody claimed: still count the request
                    slot.decision = await limiter.hit(bucket, spec.limit, spec.period)
                    _allowed.inc()
                headers = rate_limit_headers(group.value, spec.period, slot.decision)
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await next_app(scope, receive, send_with_headers)
        decision = slot.decision
        if decision is not None and not decision.allowed:
            headers = rate_limit_headers(group.value, spec.period, decision)
            await _refuse(scope, receive, send, group=group, spec=spec, headers=headers)


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    group: GroupName,
    spec: RateLimitSpec,
    headers: list[tuple[bytes, bytes]],
) -> None:
    _limited.inc()
    metrics.counter(f"ratelimit.limited.{group.value}").inc()
    await send_problem(
        scope,
        receive,
        send,
        429,
        f"Rate limit of {spec} exceeded for this client; retry after the given seconds.",
        headers={k.decode(): v.decode() for k, v in headers},
    )
