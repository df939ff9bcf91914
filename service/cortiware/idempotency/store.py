"""The idempotency record store: an atomic claim per key, in Redis or in memory.

A record is a Redis hash `cw:idem:<sha256(scope)>` with fields `st` (`p` in progress,
`c` completed), `fp` (request fingerprint), `tok` (the claimant's random token), `lease`
(Redis-clock ms until which an in-progress claim is presumed alive) and `resp` (the stored
response, once completed).

- `claim` (one script): no record -> create it in progress and run. Completed -> replay, or
  `mismatch` when the fingerprint differs. In progress with a live lease -> `in_progress`
  (or `mismatch`). In progress with an expired lease (the claimant crashed) -> take it over:
  the script compares the record it read and swaps in the new token atomically, never a
  blind overwrite of a live claim.
- `complete` and `release` are compare-and-swap on the token: a claimant that lost its lease
  can neither overwrite nor delete its successor's record.

A Redis timeout leaves a write in doubt: the script may have run and only its reply was
lost. So a claim that timed out is never retried in memory (the request would run there
while its claim lives on in Redis, and run again once a retry reaches Redis). It is asked
again on Redis instead, with the same token, until Redis answers or `SETTLE_WAIT` seconds
have passed: the script answers `acquired` to its own token, so whichever attempt ran, the
answer is exact, and a Redis that stalls (a `CLIENT PAUSE`, a slow failover) costs the
request a wait, not an error. Only a Redis silent for longer leaves the claim in doubt: it
answers `unavailable` (the middleware's 503 with `Retry-After`) and releases its possible
claim with its own token in the background. A `complete` that timed out is retried in the
background, so a retry of a request that ran replays it instead of running again after the
lease. Once the breaker is open, Redis is known to be down and every new call uses the
in-memory store.

A connection lost after the claim was written (`ReplyLostError`) is in doubt too, but can be
settled: the claim script answers `acquired` again when the in-progress record holds the
caller's own token, so the claim is asked once more on a fresh connection. Redis alive: the
answer is exact (no run from memory while Redis holds the claim). Redis dead: that attempt
is refused, and the claim goes to memory like any other outage (no 5xx).

Stored responses are sealed in Redis (AES-256-GCM, key derived from `SESSION_SECRET` with
HKDF, the record's key as associated data): a response can carry a secret shown once (the
invite link of `POST /api/provider/invites`, a login's CSRF token), and read access to Redis
must not reveal it; the database keeps only the invite token's hash for the same reason. A
record sealed under a previous `SESSION_SECRET` cannot be opened: `claim` answers
`unreadable`, and the request is not run again.

`claim` can carry the request's rate-limit decision (`LimitCheck`): one script then runs the
same GCRA as `GCRALimiter.hit` on the bucket and, only when the request is admitted, the
claim; so a keyed request pays one round trip for both instead of two, and a refused
request claims nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Final

import msgspec
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from cortiware import metrics
from cortiware.kv import KV, UNAVAILABLE_ERRORS
from cortiware.kv.scripts import LuaScript, ReplyLostError
from cortiware.ratelimit.gcra import Decision, GCRALimiter, gcra_lua

__all__ = [
    "COMPLETED_TTL",
    "ClaimOutcome",
    "ClaimResult",
    "IdempotencyStore",
    "LimitCheck",
    "MemoryIdempotencyStore",
    "ResponseSeal",
    "StoredResponse",
]

COMPLETED_TTL: Final = 24 * 3600
"""Seconds a completed response is kept for replay."""
DEFAULT_LEASE: Final = 60.0
"""Seconds an in-progress claim is presumed alive before another request may take it over."""
SETTLE_WAIT: Final = 5.0
"""Seconds a claim in doubt (Redis timed out) keeps asking Redis before it answers
`unavailable`; longer than the stalls Redis recovers from by itself."""
_SETTLE_PAUSE: Final = 0.05
"""Seconds between two attempts to settle a claim in doubt."""
_REPAIR_DELAYS: Final = (0.0, 0.2, 1.0, 5.0)
"""Seconds before each background attempt to settle a write whose reply was lost."""
_MAX_REPAIRS: Final = 1024
"""Pending background repairs per process; beyond it the record just expires (lease)."""

_log = structlog.get_logger(__name__)
_unsure = metrics.counter("idempotency.unsure")
_unreadable = metrics.counter("idempotency.unreadable")
_reasked = metrics.counter("idempotency.claim_reasked")
_settled = metrics.counter("idempotency.settled")

_CLAIM_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_ms = tonumber(ARGV[3])
local rec = redis.call('HMGET', KEYS[1], 'st', 'fp', 'tok', 'lease', 'resp')
if not rec[1] then
  redis.call('HSET', KEYS[1], 'st', 'p', 'fp', ARGV[1], 'tok', ARGV[2], 'lease', now + lease_ms)
  redis.call('PEXPIRE', KEYS[1], lease_ms * 2)
  return {'acquired'}
end
if rec[1] == 'p' and rec[3] == ARGV[2] then
  return {'acquired'}  -- our own claim, asked again after its reply was lost
end
if rec[1] == 'c' then
  if rec[2] ~= ARGV[1] then return {'mismatch'} end
  return {'completed', rec[5]}
end
local lease = tonumber(rec[4])
if lease <= now then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'tok', ARGV[2], 'lease', now + lease_ms)
  redis.call('PEXPIRE', KEYS[1], lease_ms * 2)
  return {'taken_over'}
end
if rec[2] ~= ARGV[1] then return {'mismatch'} end
return {'in_progress', tostring(lease - now)}
"""

# The rate limiter's own GCRA (`gcra_lua`) on bucket KEYS[2], emission interval ARGV[4] (us)
# and limit ARGV[5]; a refusal returns before the claim and writes nothing.
_LIMIT_CLAIM_LUA: Final = (
    gcra_lua(key="KEYS[2]", interval="ARGV[4]", limit="ARGV[5]")
    + """
if decision[1] == 0 then
  return {'limited', '', decision[1], decision[2], decision[3], decision[4]}
end
local function claim()
"""
    + _CLAIM_LUA
    + """
end
local r = claim()
return {r[1], r[2] or '', decision[1], decision[2], decision[3], decision[4]}
"""
)

_COMPLETE_LUA: Final = """
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', 'c', 'resp', ARGV[2])
redis.call('HDEL', KEYS[1], 'lease')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_RELEASE_LUA: Final = """
local rec = redis.call('HMGET', KEYS[1], 'st', 'tok')
if rec[1] ~= 'p' or rec[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


_CLAIM: Final = LuaScript(_CLAIM_LUA)
_LIMIT_CLAIM: Final = LuaScript(_LIMIT_CLAIM_LUA)
_COMPLETE: Final = LuaScript(_COMPLETE_LUA)
_RELEASE: Final = LuaScript(_RELEASE_LUA)


class ClaimOutcome(StrEnum):
    """What `claim` found."""

    ACQUIRED = "acquired"
    TAKEN_OVER = "taken_over"
    IN_PROGRESS = "in_progress"
    MISMATCH = "mismatch"
    COMPLETED = "completed"
    LIMITED = "limited"
    """Refused by the rate limit of a `LimitCheck`: nothing was claimed."""
    UNAVAILABLE = "unavailable"
    """Redis timed out on the claim: the caller must not run the request now."""
    UNREADABLE = "unreadable"
    """Completed, but its stored response was sealed under another secret (rotated)."""


class ResponseSeal:
    """Seals stored responses for Redis: AES-256-GCM under a key derived from a secret."""

    __slots__ = ("_aead",)
    _VERSION: Final = b"\x01"

    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"cortiware idempotency v1"
        ).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, record: str, blob: bytes) -> bytes:
        """`blob` encrypted and bound to `record` (the Redis key it is stored under)."""
        nonce = secrets.token_bytes(12)
        return self._VERSION + nonce + self._aead.encrypt(nonce, blob, record.encode())

    def open(self, record: str, sealed: bytes) -> bytes | None:
        """The blob `seal` was given, or None when sealed under another key or record."""
        if sealed[:1] != self._VERSION or len(sealed) < 29:
            return None
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], record.encode())
        except InvalidTag:
            return None


class StoredResponse(msgspec.Struct, array_like=True):
    """A response kept for replay: status, selected headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def encode(self) -> bytes:
        """msgpack bytes of this response."""
        return msgspec.msgpack.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> StoredResponse:
        """The response encoded by `encode`."""
        return msgspec.msgpack.decode(raw, type=cls)


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """`claim`'s outcome; `token` is set when the caller now owns the key."""

    outcome: ClaimOutcome
    token: str | None = None
    response: StoredResponse | None = None
    retry_after: float = 0.0
    decision: Decision | None = None
    """The rate-limit decision, when `claim` was given a `LimitCheck`."""

    @property
    def owned(self) -> bool:
        """True when the caller must run the request and then complete or release."""
        return self.outcome in (ClaimOutcome.ACQUIRED, ClaimOutcome.TAKEN_OVER)


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """A rate-limit decision to take together with the claim: `limit` per `period` s."""

    limiter: GCRALimiter
    bucket: str
    """The bucket key, as given to `GCRALimiter.hit`."""
    limit: int
    period: float


@dataclass(slots=True)
class _MemoryRecord:
    fingerprint: str
    token: str
    expires_at: float
    lease_until: float = 0.0
    response: StoredResponse | None = None


class MemoryIdempotencyStore:
    """The same semantics in process memory (asyncio makes each method atomic)."""

    __slots__ = ("_calls", "_records", "lease")

    def __init__(self, lease: float = DEFAULT_LEASE) -> None:
        self.lease = lease
        self._records: dict[str, _MemoryRecord] = {}
        self._calls = 0

    def claim(self, key: str, fingerprint: str) -> ClaimResult:
        """Claim `key` for a request with `fingerprint`."""
        now = time.monotonic()
        self._calls += 1
        if self._calls % 1024 == 0:
            self._sweep(now)
        rec = self._records.get(key)
        if rec is not None and rec.expires_at <= now:
            rec = None
        token = secrets.token_hex(16)
        if rec is None:
            self._records[key] = _MemoryRecord(
                fingerprint, token, now + 2 * self.lease, now + self.lease
            )
            return ClaimResult(ClaimOutcome.ACQUIRED, token)
        if rec.response is not None:
            if rec.fingerprint != fingerprint:
                return ClaimResult(ClaimOutcome.MISMATCH)
            return ClaimResult(ClaimOutcome.COMPLETED, response=rec.response)
        if rec.lease_until <= now:
            rec.fingerprint, rec.token = fingerprint, token
            rec.lease_until, rec.expires_at = now + self.lease, now + 2 * self.lease
            return ClaimResult(ClaimOutcome.TAKEN_OVER, token)
        if rec.fingerprint != fingerprint:
            return ClaimResult(ClaimOutcome.MISMATCH)
        return ClaimResult(ClaimOutcome.IN_PROGRESS, retry_after=rec.lease_until - now)

    def complete(self, key: str, token: str, response: StoredResponse) -> bool:
        """Store `response` if `token` still owns `key`."""
        rec = self._records.get(key)
        if rec is None or rec.token != token:
            return False
        rec.response = response
        rec.expires_at = time.monotonic() + COMPLETED_TTL
        return True

    def release(self, key: str, token: str) -> bool:
        """Delete an in-progress claim if `token` still owns it."""
        rec = self._records.get(key)
        if rec is None or rec.token != token or rec.response is not None:
            return False
        del self._records[key]
        return True

    def _sweep(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if r.expires_at <= now]:
            del self._records[key]


class IdempotencyStore:
    """Idempotency records on Redis through `KV`, in memory while the breaker is open."""

    __slots__ = (
        "_kv",
        "_repairs",
        "_seal",
        "lease",
        "memory",
        "prefix",
        "settle_wait",
    )

    def __init__(
        self,
        kv: KV,
        *,
        secret: str,
        lease: float = DEFAULT_LEASE,
        prefix: str = "idem",
        settle_wait: float | None = None,
    ) -> None:
        self._kv = kv
        self._seal = ResponseSeal(secret)
        self.lease = lease
        self.settle_wait = SETTLE_WAIT if settle_wait is None else settle_wait
        self.prefix = kv.key(prefix) + ":"
        self.memory = MemoryIdempotencyStore(lease)
        self._repairs: set[asyncio.Task[None]] = set()

    async def claim(
        self, key: str, fingerprint: str, limit: LimitCheck | None = None
    ) -> ClaimResult:
        """Atomically claim `key` (a hash of the scope) for a request with `fingerprint`.

        With `limit`, first decide the rate limit in the same script: `LIMITED` (nothing
        claimed) when refused; otherwise the claim's outcome, both carrying `decision`.
        """
        full = self.prefix + key
        token = secrets.token_hex(16)

        async def on_redis(_: Redis) -> ClaimResult:
            try:
                return await attempt()
            except ReplyLostError:
                # The connection died after the claim was written: it may have run. The
                # script answers `acquired` again to its own token, so asking once more on a
                # fresh connection settles it (a limited request's bucket is charged twice).
                # If Redis itself is gone, that attempt fails as a plain connection error and
                # the claim goes to memory like any other outage.
                _reasked.inc()
                result = await attempt()
                if result.outcome is ClaimOutcome.LIMITED:  # the lost attempt may hold a claim
                    self._repair(partial(self._release_on, full, token), "release")
                return result

        async def attempt() -> ClaimResult:
            lease_ms = int(self.lease * 1000)
            if limit is None:
                raw = await self._kv.evalsha(_CLAIM, [full], [fingerprint, token, lease_ms])
                return self._claim_result(full, raw, token, None)
            interval = limit.period * 1_000_000 / limit.limit
            raw = await self._kv.evalsha(
                _LIMIT_CLAIM,
                [full, limit.limiter.prefix + limit.bucket],
                [fingerprint, token, lease_ms, interval, limit.limit],
            )
            allowed, remaining, reset_us, retry_us = (int(v) for v in raw[2:6])
            decision = Decision(
                allowed == 1, limit.limit, remaining, reset_us / 1_000_000, retry_us / 1_000_000
            )
            return self._claim_result(full, raw, token, decision)

        async def on_memory() -> ClaimResult:
            if limit is None:
                return self.memory.claim(full, fingerprint)
            decision = limit.limiter.memory.hit(
                limit.limiter.prefix + limit.bucket, limit.limit, limit.period
            )
            if not decision.allowed:
                return ClaimResult(ClaimOutcome.LIMITED, decision=decision)
            return dataclasses.replace(self.memory.claim(full, fingerprint), decision=decision)

        async def on_unsure() -> ClaimResult:
            # The claim may have been written: ask Redis again with the same token (exact
            # whichever attempt ran) rather than run from memory; give up after a while.
            _unsure.inc()
            result = await self._settle(attempt)
            if result is None:
                self._repair(partial(self._release_on, full, token), "release")
                return ClaimResult(ClaimOutcome.UNAVAILABLE, retry_after=1.0)
            _settled.inc()
            if result.outcome is ClaimOutcome.LIMITED:  # the first attempt may hold a claim
                self._repair(partial(self._release_on, full, token), "release")
            return result

        return await self._kv.run(on_redis, on_memory, on_unsure=on_unsure)

    async def _settle(self, attempt: Callable[[], Awaitable[ClaimResult]]) -> ClaimResult | None:
        """`attempt` (the claim with its first token) again until Redis answers, for at most
        `settle_wait` seconds (each attempt bounded by the command timeout); None if it never
        did. Straight to Redis, whatever the breaker says: only Redis knows the answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_wait
        while loop.time() < deadline:
            await asyncio.sleep(_SETTLE_PAUSE)
            try:
                return await attempt()
            except UNAVAILABLE_ERRORS:
                continue
        return None

    async def complete(self, key: str, token: str, response: StoredResponse) -> bool:
        """Keep `response` for 24 h if `token` still owns `key`; False when it lost it."""
        full = self.prefix + key
        blob = self._seal.seal(full, response.encode())

        async def on_redis(_: Redis) -> bool:
            return await self._complete_on(full, token, blob)

        async def on_memory() -> bool:
            return self.memory.complete(full, token, response)

        async def on_unsure() -> bool:
            _unsure.inc()
            self._repair(partial(self._complete_on, full, token, blob), "complete")
            return True  # settled as far as the caller goes: the record is kept either way

        return await self._kv.run(on_redis, on_memory, on_unsure=on_unsure)

    async def release(self, key: str, token: str) -> bool:
        """Drop the in-progress claim if `token` still owns it, so a retry runs again."""
        full = self.prefix + key

        async def on_redis(_: Redis) -> bool:
            return await self._release_on(full, token)

        async def on_memory() -> bool:
            return self.memory.release(full, token)

        async def on_unsure() -> bool:
            _unsure.inc()
            self._repair(partial(self._release_on, full, token), "release")
            return False

        return await self._kv.run(on_redis, on_memory, on_unsure=on_unsure)

    async def _complete_on(self, full: str, token: str, blob: bytes) -> bool:
        args = [token, blob, COMPLETED_TTL * 1000]
        return bool(await self._kv.evalsha(_COMPLETE, [full], args))

    async def _release_on(self, full: str, token: str) -> bool:
        return bool(await self._kv.evalsha(_RELEASE, [full], [token]))

    def _repair(self, op: Callable[[], Awaitable[object]], action: str) -> None:
        """Re-run the compare-and-swap `op` in the background until Redis answers.

        Safe to repeat: `complete` and `release` only act while the token owns the record.
        Stops when the breaker opens (Redis is down: the record expires with its lease).
        """
        if len(self._repairs) >= _MAX_REPAIRS:
            _log.warning("idempotency repair dropped: too many pending", action=action)
            return

        async def run() -> None:
            for delay in _REPAIR_DELAYS:
                await asyncio.sleep(delay)
                if self._kv.redis is None or not self._kv.breaker.is_closed:
                    break
                try:
                    await op()
                except UNAVAILABLE_ERRORS as exc:
                    self._kv.breaker.record_failure(exc)
                else:
                    self._kv.breaker.record_success()
                    return
            _log.warning("idempotency repair abandoned", action=action)

        task = asyncio.get_running_loop().create_task(run())
        self._repairs.add(task)
        task.add_done_callback(self._repairs.discard)

    def _claim_result(
        self, full: str, raw: list[bytes], token: str, decision: Decision | None
    ) -> ClaimResult:
        outcome = ClaimOutcome(raw[0].decode())
        if outcome is ClaimOutcome.COMPLETED:
            blob = self._seal.open(full, raw[1])
            if blob is None:
                _unreadable.inc()
                return ClaimResult(ClaimOutcome.UNREADABLE, decision=decision)
            return ClaimResult(outcome, response=StoredResponse.decode(blob), decision=decision)
        if outcome is ClaimOutcome.IN_PROGRESS:
            return ClaimResult(outcome, retry_after=int(raw[1]) / 1000, decision=decision)
        owned = outcome in (ClaimOutcome.ACQUIRED, ClaimOutcome.TAKEN_OVER)
        return ClaimResult(outcome, token if owned else None, decision=decision)

    async def aclose(self) -> None:
        """Give pending background repairs a moment, then cancel the rest."""
        pending = set(self._repairs)
        if pending:
            _, late = await asyncio.wait(pending, timeout=1.0)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
