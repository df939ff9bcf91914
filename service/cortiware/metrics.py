"""One in-process registry of monotonically increasing counters.

Usage::

    from cortiware import metrics

    metrics.counter("ratelimit.limited").inc()
    metrics.snapshot()  # {"ratelimit.limited": 1, ...}

Counters are process-local (each worker counts its own); the metrics publisher reads
`snapshot()` periodically. `inc` is a plain integer add, safe under asyncio and cheap enough
for the request path (the GIL makes the add atomic for threads too).
"""

from __future__ import annotations

from typing import Final

__all__ = ["Counter", "counter", "reset", "snapshot"]


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


def reset() -> None:
    """Set every counter back to zero (tests only; counters stay registered)."""
    for c in _COUNTERS.values():
        c.value = 0
