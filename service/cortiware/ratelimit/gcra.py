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

from redis.asyncio import Redis

from cortiware.kv import KV
from cortiware.kv.scripts import LuaScript

__all__ = ["GCRA_LUA", "Decision", "GCRALimiter", "MemoryGCRA"]

# Times are microseconds. `+ 1` and `> 1` absorb float rounding of fractional intervals
# (e.g. 60 s / 7) so the L-th request of a burst is never refused by a rounding error.
GCRA_LUA: Final = """
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * limit
if allow_at - now > 1 then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.max(0, math.floor((now - allow_at + 1) / interval)), math.ceil(new_tat - now), 0}
"""

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

        async def on_redis(_: Redis) -> Decision:
            raw = await self._kv.evalsha(_GCRA, [full_key], [period * _US / limit, limit])
            allowed, remaining, reset_us, retry_us = (int(v) for v in raw)
            return Decision(allowed == 1, limit, remaining, reset_us / _US, retry_us / _US)

        async def on_memory() -> Decision:
            return self.memory.hit(full_key, limit, period)

        return await self._kv.run(on_redis, on_memory)
