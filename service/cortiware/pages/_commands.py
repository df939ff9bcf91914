"""A page form runs one domain command, under the protections its JSON route has.

Pages call the domain services in-process (never the service's own HTTP API). What the
JSON routes get from the middleware, a form command gets here, from the same parts:

- the rate limit of the matching API group, counted in the same bucket (`bucket_key`), so
  a login form and `POST /api/auth/login` share one limit per client address and username;
- the form's `_form_key` as its idempotency key, in the same store as `Idempotency-Key`:
  submitting one rendered form twice (double click, reload) replays the first outcome;
- one transaction per command (`transaction`), committed before the outcome is stored, with
  the cache invalidated after the commit.

Errors become an `Outcome` the page shows with the error's status and detail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from litestar import Request
from litestar.datastructures import FormMultiDict
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.routes import settings_of
from cortiware.db.session import DB_SESSIONMAKER, transaction
from cortiware.errors import CortiwareError
from cortiware.idempotency import (
    IDEMPOTENCY_STORE,
    ClaimOutcome,
    StoredResponse,
    fingerprint,
    valid_key,
)
from cortiware.idempotency.middleware import key_owner
from cortiware.middleware.client_ip import client_ip
from cortiware.ratelimit import RATE_LIMITER, GroupName, RateLimitPolicy
from cortiware.ratelimit.headers import retry_after_seconds
from cortiware.ratelimit.middleware import bucket_key, spraying_bucket
from cortiware.scope import principal_id_of

__all__ = ["Command", "Outcome", "rate_limited", "run_command"]

AnyRequest = Request[Any, Any, Any]
Command = Callable[[AsyncSession], Awaitable[Any]]
"""A domain call in the given transaction; its result is shown as the API would send it."""

_NOT_RUN: Final = {
    ClaimOutcome.MISMATCH: (422, "This form was already submitted with different values."),
    ClaimOutcome.UNREADABLE: (422, "This form was already submitted; reload the page."),
    ClaimOutcome.IN_PROGRESS: (409, "This form is still being processed."),
    ClaimOutcome.UNAVAILABLE: (503, "The service is busy; submit the form again."),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command answered: status, and the result as JSON builtins or an error detail."""

    status: int
    body: Any = None
    detail: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for a success."""
        return 200 <= self.status < 300


class _Stored(msgspec.Struct, array_like=True):
    status: int
    body: Any
    detail: str


async def rate_limited(
    request: AnyRequest, group: GroupName, *, username: str = ""
) -> Outcome | None:
    """A 429 outcome when this visitor's bucket in `group` is empty, else None (counted)."""
    settings = settings_of(request)
    policy = RateLimitPolicy.from_settings(settings)
    limiter = RATE_LIMITER.find(request.app)
    if not policy.enabled or limiter is None:
        return None
    client = client_ip(request.scope, settings.trusted_proxies)
    checks = [
        (
            bucket_key(
                group, client=client, principal=principal_id_of(request.scope), username=username
            ),
            policy.spec(group),
        )
    ]
    if group is GroupName.AUTH:  # as the API's login: per IP across usernames first
        checks.insert(0, (spraying_bucket(client), policy.auth_ip))
    for bucket, spec in checks:
        decision = await limiter.hit(bucket, spec.limit, spec.period)
        if not decision.allowed:
            break
    else:
        return None
    retry = retry_after_seconds(decision)
    return Outcome(
        429,
        detail=f"Rate limit of {spec} exceeded for this client; retry after {retry} seconds.",
        headers={"Retry-After": str(retry)},
    )


async def run_command(
    request: AnyRequest,
    command: Command,
    *,
    form: FormMultiDict | None = None,
    group: GroupName = GroupName.DEFAULT,
    status: int = 200,
) -> Outcome:
    """Run `command` (once per rendered `form`, when given); `status` on success."""
    if refused := await rate_limited(request, group):
        return refused
    key = str(form.get("_form_key", "")).strip() if form is not None else ""
    if key and not valid_key(key):
        return Outcome(400, detail="Idempotency-Key must be 1 to 255 printable ASCII characters.")
    store = IDEMPOTENCY_STORE.find(request.app)
    if form is None or not key or store is None:
        return await _execute(request, command, status)
    who = key_owner(request.scope, settings_of(request).trusted_proxies)
    path = request.url.path
    record_key = hashlib.sha256(f"page\x00{who}\x00{path}\x00{key}".encode()).hexdigest()
    claim = await store.claim(
        record_key, fingerprint("POST", path, b"", _form_bytes(form), who), None
    )
    if claim.outcome is ClaimOutcome.COMPLETED and claim.response is not None:
        stored = msgspec.json.decode(claim.response.body, type=_Stored)
        return Outcome(stored.status, stored.body, stored.detail)
    if claim.outcome in _NOT_RUN:
        code, detail = _NOT_RUN[claim.outcome]
        return Outcome(code, detail=detail)
    assert claim.token is not None
    outcome: Outcome | None = None
    try:
        outcome = await _execute(request, command, status)
    finally:
        if outcome is not None and outcome.status < 500:
            body = msgspec.json.encode(_Stored(outcome.status, outcome.body, outcome.detail))
            await store.complete(record_key, claim.token, StoredResponse(outcome.status, [], body))
        else:
            await store.release(record_key, claim.token)
    return outcome


async def _execute(request: AnyRequest, command: Command, status: int) -> Outcome:
    try:
        async with transaction(DB_SESSIONMAKER.get(request.app)) as session:
            result = await command(session)
    except CortiwareError as exc:
        return Outcome(exc.status_code, detail=exc.detail, headers=dict(exc.headers or {}))
    except msgspec.ValidationError as exc:  # the form did not fit the route's body type
        return Outcome(400, detail=f"Validation failed: {exc}")
    return Outcome(status, msgspec.to_builtins(result))


def _form_bytes(form: FormMultiDict) -> bytes:
    # What makes two submissions "the same form": every field but the per-session CSRF token.
    fields = sorted((k, str(v)) for k, v in form.multi_items() if k != "_csrf")
    return msgspec.json.encode(fields)
