"""Publish the in-process counters as CloudWatch Embedded Metric Format lines on stdout.

On Fargate the awslogs driver ships stdout to CloudWatch Logs, which extracts EMF lines into
metrics (namespace `Cortiware`, dimension `Environment`), so no agent or API call is needed.
Each worker publishes the *delta* of its own counters; CloudWatch sums them across the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager

import structlog
from aws_embedded_metrics.environment.local_environment import LocalEnvironment
from aws_embedded_metrics.logger.metrics_context import MetricsContext
from aws_embedded_metrics.logger.metrics_logger import MetricsLogger
from litestar import Litestar

from cortiware import metrics
from cortiware.settings import Settings

__all__ = ["NAMESPACE", "CounterPublisher", "metrics_lifespan"]

NAMESPACE = "Cortiware"
log = structlog.get_logger("cortiware.metrics")


class CounterPublisher:
    """Turns counter snapshots into EMF documents of the deltas since the last flush."""

    def __init__(self, environment: str) -> None:
        self.environment = environment
        self._last: dict[str, int] = {}
        self._env = LocalEnvironment()

    def deltas(self, current: Mapping[str, int]) -> dict[str, int]:
        """The increase of each counter since the previous call (zeros omitted)."""
        changed = {k: v - self._last.get(k, 0) for k, v in current.items()}
        self._last = dict(current)
        return {k: v for k, v in changed.items() if v > 0}

    async def flush(self) -> int:
        """Emit one EMF document with every changed counter, every observed value (as a
        list, so CloudWatch keeps percentiles) and every gauge; return how many metrics it
        held."""
        changed = self.deltas(metrics.snapshot())
        observed = metrics.drain_observations()
        gauges = metrics.read_gauges()
        if not changed and not observed and not gauges:
            return 0

        async def resolve() -> LocalEnvironment:
            return self._env

        emf = MetricsLogger(resolve, MetricsContext.empty())
        emf.set_namespace(NAMESPACE)
        emf.set_dimensions({"Environment": self.environment})
        for name, value in changed.items():
            emf.put_metric(name, value, "Count")
        for name, values in observed.items():
            for observation in values:
                emf.put_metric(name, observation, "Milliseconds")
        for name, level in gauges.items():
            emf.put_metric(name, level, "None")
        await emf.flush()
        return len(changed) + len(observed) + len(gauges)


@asynccontextmanager
async def metrics_lifespan(
    app: Litestar, *, settings: Settings, interval: float = 60.0
) -> AsyncGenerator[None, None]:
    """Flush counters every `interval` seconds in staging/production; once more at shutdown."""
    if not settings.app_env.is_deployed:
        yield
        return
    publisher = CounterPublisher(settings.app_env.value)

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await publisher.flush()
            except Exception:  # metrics must never take the service down
                log.warning("metrics_flush_failed", exc_info=True)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await publisher.flush()
