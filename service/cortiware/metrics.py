"""One in-process registry of monotonically increasing counters, and of observed values.

Usage::

    from cortiware import metrics

    metrics.counter("ratelimit.limited").inc()
    metrics.snapshot()  # {"ratelimit.limited": 1, ...}
    metrics.observe("http.api.onboarding.latency_ms", 12.5)
    metrics.drain_observations()  # {"http.api.onboarding.latency_ms": [12.5]}, then empty
    metrics.gauge("redis.fallback.active", lambda: 1.0 if open else 0.0)
    metrics.read_gauges()  # {"redis.fallback.active": 0.0}: read at each publish

Counters are process-local (each worker counts its own); the metrics publisher reads
`snapshot()` periodically. `inc` is a plain integer add, safe under asyncio and cheap enough
for the request path (the GIL makes the add atomic for threads too). Observations (latencies)
are kept as raw values until the publisher drains them, so CloudWatch can compute
percentiles; at most `MAX_OBSERVATIONS` per name are kept between two drains (EMF takes 100
values per metric and document): a uniform random sample of all the values observed since
the last drain (reservoir sampling), not the first ones, so a busy minute's percentiles are
not those of its first hundred requests.

Gauges are states, not events: a function registered under a name and read at every
publish (each worker publishes its own; alarms take the Maximum across them).

Names the alarms and dashboard of the infrastructure read (namespace `Cortiware`):
`activity.invite_*`, `db.connect_failed`, `db.query_ms`, `db.pool.wait_ms`,
`database.pool_exhausted`, `redis.fallback.active`, `cache.hit`/`cache.miss`,
`http.<group>.latency_ms` and `http.<group>.<n>xx`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Final

__all__ = [
    "DB_CONNECT_FAILED",
    "MAX_OBSERVATIONS",
    "Counter",
    "counter",
    "drain_observations",
    "forget_gauge",
    "gauge",
    "observe",
    "read_gauges",
    "reset",
    "snapshot",
]

DB_CONNECT_FAILED: Final = "db.connect_failed"
"""Counter of failed attempts to open a database connection (an infrastructure alarm reads it)."""
MAX_OBSERVATIONS: Final = 100
"""Values kept per observed name between two drains: a uniform sample when there were more."""


class Counter:
    """A named, monotonically increasing integer."""

    __slots__ = ("name", "value")

    def __init__(self, name: str) -> None:
        self.name: Final = name
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        """Add `amount` (default 1) to the counter."""
        self.value += amount


_COUNTERS: dict[str, Counter] = {}


def counter(name: str) -> Counter:
    """Return the counter called `name`, creating it at zero on first use."""
    found = _COUNTERS.get(name)
    if found is None:
        found = _COUNTERS.setdefault(name, Counter(name))
    return found


def snapshot() -> dict[str, int]:
    """Return every counter's current value, by name."""
    return {name: c.value for name, c in sorted(_COUNTERS.items())}


class _Sample:
    """One name's kept values, how many were observed since the last drain, and (once the
    sample is full) which observation replaces a kept value next (Algorithm L)."""

    __slots__ = ("next", "seen", "values", "weight")

    def __init__(self) -> None:
        self.values: list[float] = []
        self.seen = 0
        self.weight = 1.0
        self.next = 0

    def plan_next(self) -> None:
        """Draw the next observation to keep (Li's Algorithm L: geometric jumps, so a full
        sample costs no random draw per observation, only per kept one)."""
        self.weight *= math.exp(math.log(_open_unit()) / MAX_OBSERVATIONS)
        if self.weight >= 1.0:  # the float rounded up: keep the very next one
            self.next = self.seen + 1
            return
        self.next = self.seen + int(math.log(_open_unit()) / math.log1p(-self.weight)) + 1


_OBSERVATIONS: dict[str, _Sample] = {}
_SAMPLING: Final = random.Random()  # noqa: S311 - sampling, not security
"""The sample's own generator: the `random` module's shared one belongs to whoever seeds it
(Hypothesis does, per example, in tests serving the app in their own process)."""


def _open_unit() -> float:
    """A uniform draw from (0, 1): never 0, whose logarithm is undefined."""
    draw = _SAMPLING.random()
    while draw == 0.0:
        draw = _SAMPLING.random()
    return draw


def observe(name: str, value: float) -> None:
    """Keep `value` (e.g. a latency in milliseconds) under `name` until the next drain, or
    let it replace a kept one so the kept values stay a uniform sample of all observed."""
    sample = _OBSERVATIONS.get(name)
    if sample is None:
        sample = _OBSERVATIONS[name] = _Sample()
    sample.seen += 1
    values = sample.values
    if len(values) < MAX_OBSERVATIONS:
        values.append(value)
        if len(values) == MAX_OBSERVATIONS:
            sample.plan_next()
    elif sample.seen == sample.next:
        values[_SAMPLING.randrange(MAX_OBSERVATIONS)] = value
        sample.plan_next()


def drain_observations() -> dict[str, list[float]]:
    """Return the values observed since the last drain, by name, and forget them."""
    drained = {name: s.values for name, s in sorted(_OBSERVATIONS.items()) if s.values}
    _OBSERVATIONS.clear()
    return drained


_GAUGES: dict[str, Callable[[], float]] = {}


def gauge(name: str, read: Callable[[], float]) -> None:
    """Publish `read()` under `name` at every publish (the latest registration wins)."""
    _GAUGES[name] = read


def forget_gauge(name: str, read: Callable[[], float] | None = None) -> None:
    """Stop publishing `name` (only if it is still `read`, when given)."""
    if read is None or _GAUGES.get(name) is read:
        _GAUGES.pop(name, None)


def read_gauges() -> dict[str, float]:
    """Every gauge's current value, by name."""
    return {name: float(read()) for name, read in sorted(_GAUGES.items())}


def reset() -> None:
    """Set every counter back to zero, drop observations and gauges (tests only)."""
    for c in _COUNTERS.values():
        c.value = 0
    _OBSERVATIONS.clear()
    _GAUGES.clear()
