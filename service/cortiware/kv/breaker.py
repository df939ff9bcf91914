"""Circuit breaker between the service and Redis.

Closed: calls go to Redis. After `failure_threshold` consecutive connection errors or
timeouts it asks `confirm` (when given) whether Redis really is away, and opens only when
that fails too: every caller then uses its in-memory fallback at once (no per-request wait on
a dead Redis). While open, one background probe pings Redis every `probe_interval` seconds
and closes the breaker on the first answer. Each switch logs once and bumps a counter.

Why the confirmation: a call's timeout is measured on the event loop, so a process busy
with CPU work (or a loaded machine) makes replies that Redis sent in time look late, and
opening then would split every limit into per-process ones for nothing. `KV` passes a PING
made from a thread on a blocking socket, whose timeout the kernel measures: a busy loop
cannot delay it, so it fails only when Redis itself does not answer. A confirmation that
Redis answered resets the count (`<name>.fallback.averted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

import structlog

from cortiware import metrics

__all__ = ["BreakerState", "CircuitBreaker"]

_log = structlog.get_logger(__name__)


class BreakerState(StrEnum):
    """Whether Redis is in use (`closed`) or bypassed for the in-memory fallback (`open`)."""

    CLOSED = "closed"
    OPEN = "open"


class CircuitBreaker:
    """Counts consecutive failures, opens, and probes until the backend answers again."""

    __slots__ = (
        "_confirm",
        "_confirm_task",
        "_failures",
        "_probe",
        "_probe_task",
        "failure_threshold",
        "name",
        "opened_at",
        "probe_interval",
        "state",
    )

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        name: str = "redis",
        failure_threshold: int = 2,
        probe_interval: float = 0.5,
        confirm: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.probe_interval = probe_interval
        self.state = BreakerState.CLOSED
        self.opened_at: float | None = None
        self._failures = 0
        self._probe = probe
        self._probe_task: asyncio.Task[None] | None = None
        self._confirm = confirm
        self._confirm_task: asyncio.Task[None] | None = None

    @property
    def is_closed(self) -> bool:
        """True while calls should go to the backend."""
        return self.state is BreakerState.CLOSED

    def record_success(self) -> None:
        """Reset the consecutive-failure count."""
        self._failures = 0

    def record_failure(self, exc: BaseException) -> None:
        """Count a failure; open the breaker when the threshold is reached."""
        self._failures += 1
        if self.state is not BreakerState.CLOSED or self._failures < self.failure_threshold:
            return
        if self._confirm is None:
            self._open(exc)
        elif self._confirm_task is None or self._confirm_task.done():
            # Calls keep going to Redis meanwhile (each falls back on its own failure).
            loop = asyncio.get_running_loop()
            self._confirm_task = loop.create_task(self._confirm_then_open(self._confirm, exc))

    async def _confirm_then_open(
        self, confirm: Callable[[], Awaitable[object]], exc: BaseException
    ) -> None:
        try:
            await confirm()
        except Exception:
            if self.state is BreakerState.CLOSED:
                self._open(exc)
            return
        self._failures = 0  # Redis answers: the failures were this process being slow
        metrics.counter(f"{self.name}.fallback.averted").inc()

    def _open(self, exc: BaseException) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = time.monotonic()
        metrics.counter(f"{self.name}.fallback.activated").inc()
        _log.warning(
            "backend unavailable: switching to in-memory fallback",
            backend=self.name,
            error=type(exc).__name__,
        )
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.get_running_loop().create_task(self._probe_until_back())

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self._failures = 0
        downtime = time.monotonic() - (self.opened_at or time.monotonic())
        self.opened_at = None
        metrics.counter(f"{self.name}.fallback.recovered").inc()
        _log.warning(
            "backend available again: leaving in-memory fallback",
            backend=self.name,
            seconds_degraded=round(downtime, 3),
        )

    async def _probe_until_back(self) -> None:
        while self.state is BreakerState.OPEN:
            await asyncio.sleep(self.probe_interval)
            try:
                await self._probe()
            except Exception:  # noqa: S112 - any failure just means "still down"
                continue
            self._close()

    async def aclose(self) -> None:
        """Stop the background probe and confirmation, if running."""
        for task in (self._probe_task, self._confirm_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._probe_task = self._confirm_task = None
