"""GCRA (generic cell rate algorithm) on Redis, with an in-memory twin for the fallback.

A bucket of `limit` requests per `period` seconds stores one number: the theoretical arrival
time (TAT) of the next request. A request is admitted when `now >= TAT + T - limit*T`
(T = period/limit, the emission interval), and then TAT advances by T. One Lua script does
read, decide and write atomically with Redis's own clock (`TIME`), so every worker and
instance shares one exact bucket: of N concurrent requests against a fresh limit L, exactly L
pass. The key expires when the bucket is full again (TAT - now), so idle clients cost nothing.

Bound: in any interval of length t at most `limit + t/T` requests pass (a full burst, then
the refill rate); a fixed window's 2x burst across a boundary cannot happen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final

from cortiware.kv import FALLBACK, KV
from cortiware.kv.scripts import LuaScript

__all__ = ["GCRA_LUA", "Decision", "GCRALimiter", "MemoryGCRA", "gcra_lua"]

# Times are microseconds. `+ 1` and `> 1` absorb float rounding of fractional intervals
# (e.g. 60 s / 7) so the L-th request of a burst is never refused by a rounding error.
_GCRA_TEMPLATE: Final = """
local gcra_interval = tonumber({interval})
local gcra_limit = tonumber({limit})
local gcra_t = redis.call('TIME')
local gcra_now = tonumber(gcra_t[1]) * 1000000 + tonumber(gcra_t[2])
local gcra_tat = tonumber(redis.call('GET', {key}))
if gcra_tat == nil or gcra_tat < gcra_now then gcra_tat = gcra_now end
local gcra_new_tat = gcra_tat + gcra_interval
local gcra_allow_at = gcra_new_tat - gcra_interval * gcra_limit
local decision
if gcra_allow_at - gcra_now > 1 then
  decision = {{0, 0, math.ceil(gcra_tat - gcra_now), math.ceil(gcra_allow_at - gcra_now)}}
else
  redis.call('SET', {key}, string.format('%.0f', gcra_new_tat), 'PX',
    math.max(1, math.ceil((gcra_new_tat - gcra_now) / 1000)))
  decision = {{1, math.max(0, math.floor((gcra_now - gcra_allow_at + 1) / gcra_interval)),
    math.ceil(gcra_new_tat - gcra_now), 0}}
end
"""


def gcra_lua(*, key: str, interval: str, limit: str) -> str:
    """Lua statements deciding one GCRA request; they leave `decision` set.

    `key` is the bucket's key expression (`KEYS[1]`), `interval` the emission interval in
    microseconds and `limit` the burst (`ARGV[n]`). `decision` is `{allowed (1 or 0),
    remaining, microseconds until full, microseconds until the next admission}`. The
    rate limiter runs it alone (`GCRA_LUA`); the idempotency claim runs it before claiming.
    """
    return _GCRA_TEMPLATE.format(key=key, interval=interval, limit=limit)


GCRA_LUA: Final = gcra_lua(key="KEYS[1]", interval="ARGV[1]", limit="ARGV[2]") + "return decision\n"

_US: Final = 1_000_000
_GCRA: Final = LuaScript(GCRA_LUA)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one rate-limit check."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until the bucket is full again."""
    retry_after: float
    """Seconds until the next request would pass (0 when allowed)."""


class MemoryGCRA:
    """The same GCRA in process memory: exact within one process, used while Redis is down."""

    __slots__ = ("_calls", "_tats")

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._calls = 0

    def hit(self, key: str, limit: int, period: float) -> Decision:
        """Decide one request for `key` against `limit` per `period` seconds."""
        interval = period * _US / limit
        now = time.time() * _US
        self._calls += 1
        if self._calls % 4096 == 0:
            self._sweep(now)
        tat = max(self._tats.get(key, now), now)
        new_tat = tat + interval
        allow_at = new_tat - interval * limit
        if allow_at - now > 1:
            return Decision(False, limit, 0, (tat - now) / _US, (allow_at - now) / _US)
        self._tats[key] = new_tat
        remaining = max(0, math.floor((now - allow_at + 1) / interval))
        return Decision(True, limit, remaining, (new_tat - now) / _US, 0.0)

    def _sweep(self, now: float) -> None:
        # A TAT in the past means a full bucket: the same as no entry at all.
        for key in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[key]

    def clear(self) -> None:
        """Forget every bucket."""
        self._tats.clear()


class GCRALimiter:
    """GCRA on Redis through `KV` (one EVALSHA per decision), memory while the breaker is open."""

    __slots__ = ("_kv", "memory", "prefix")

    # Concurrent decisions of one process share the script channel's writes (see
    # `cortiware.kv.scripts`): still one EVALSHA per decision, far fewer socket writes.

    def __init__(self, kv: KV, prefix: str = "rl") -> None:
        self._kv = kv
        self.prefix = kv.key(prefix) + ":"
        self.memory = MemoryGCRA()

    async def hit(self, key: str, limit: int, period: float) -> Decision:
        """Decide one request for bucket `key`: `limit` requests per `period` seconds."""
        full_key = self.prefix + key
        raw = await self._kv.script(_GCRA, [full_key], [period * _US / limit, limit])
        if raw is FALLBACK:
            return self.memory.hit(full_key, limit, period)
        # Lua numbers come back as RESP integers.
        allowed, remaining, reset_us, retry_us = raw
        return Decision(allowed == 1, limit, remaining, reset_us / _US, retry_us / _US)
