"""Counters are published as CloudWatch EMF deltas."""

from __future__ import annotations

import json

import pytest

from cortiware import metrics
from cortiware.metrics_publisher import NAMESPACE, CounterPublisher


async def test_flush_emits_emf_with_deltas(capsys: pytest.CaptureFixture[str]) -> None:
    """A flush writes one EMF line holding each counter's increase since the last flush."""
    publisher = CounterPublisher("staging")
    publisher.deltas(metrics.snapshot())  # start from the current values
    metrics.drain_observations()  # and without the latencies earlier tests' requests left
    metrics.counter("test.publisher.events").inc(3)
    assert await publisher.flush() == 1
    line = next(json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert ["Environment"] in directive["Dimensions"] or any(
        "Environment" in d for d in directive["Dimensions"]
    )
    assert line["test.publisher.events"] == 3
    assert line["Environment"] == "staging"
    metrics.counter("test.publisher.events").inc(2)
    await publisher.flush()
    second = next(json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x)
    assert second["test.publisher.events"] == 2


async def test_nothing_changed_emits_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """Without counter changes, observations or gauges a flush writes no line."""
    metrics.reset()  # gauges an earlier test's app may have left registered
    publisher = CounterPublisher("prod")
    publisher.deltas(metrics.snapshot())
    metrics.drain_observations()
    assert await publisher.flush() == 0
    assert '"_aws"' not in capsys.readouterr().out
