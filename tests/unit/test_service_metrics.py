"""The service's own metrics: request latency and status per route group, failed database
connections, observed values published as EMF lists, and gauges (Redis fallback)."""

from __future__ import annotations

import asyncio
import json

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from cortiware import metrics
from cortiware.db.engine import create_engine
from cortiware.db.outage import ConnectFailed
from cortiware.metrics_publisher import CounterPublisher
from cortiware.middleware.request_context import RequestContextMiddleware
from cortiware.wiring import REDIS_FALLBACK_ACTIVE, redis_lifespan
from tests.conftest import SettingsFactory
from tests.support.servers import free_port


@get("/api/onboarding/verify", sync_to_thread=False)
def verify() -> dict[str, str]:
    return {"ok": "yes"}


@get("/api/webhooks/stripe", sync_to_thread=False)
def broken() -> None:
    raise RuntimeError("boom")


@get("/provider", sync_to_thread=False)
def provider() -> str:
    return "page"


def _client() -> TestClient[Litestar]:
    app = Litestar([verify, broken, provider], middleware=[RequestContextMiddleware()])
    return TestClient(app, raise_server_exceptions=False)


def test_requests_are_counted_and_timed_per_route_group() -> None:
    """Each answered request adds a status-class count and a latency to its route group."""
    metrics.reset()
    with _client() as client:
        assert client.get("/api/onboarding/verify").status_code == 200
        assert client.get("/api/onboarding/verify").status_code == 200
        assert client.get("/api/webhooks/stripe").status_code == 500
        assert client.get("/provider").status_code == 200
    counts = metrics.snapshot()
    assert counts["http.api.onboarding.2xx"] == 2
    assert counts["http.api.webhooks.5xx"] == 1
    assert counts["http.pages.2xx"] == 1
    observed = metrics.drain_observations()
    assert len(observed["http.api.onboarding.latency_ms"]) == 2
    assert all(v >= 0 for v in observed["http.api.onboarding.latency_ms"])
    assert set(observed) == {
        "http.api.onboarding.latency_ms",
        "http.api.webhooks.latency_ms",
        "http.pages.latency_ms",
    }
    assert metrics.drain_observations() == {}


def test_observations_are_bounded_between_drains() -> None:
    """At most MAX_OBSERVATIONS values per name are kept until the next drain."""
    metrics.reset()
    for i in range(metrics.MAX_OBSERVATIONS + 50):
        metrics.observe("test.bounded", float(i))
    assert len(metrics.drain_observations()["test.bounded"]) == metrics.MAX_OBSERVATIONS


def test_kept_observations_sample_the_whole_interval() -> None:
    """Of 10,000 values 0-9,999 the kept hundred are spread over all of them (a uniform
    sample: mean near 5,000, within 7 standard errors), not the first hundred."""
    metrics.reset()
    for i in range(10_000):
        metrics.observe("test.sampled", float(i))
    kept = metrics.drain_observations()["test.sampled"]
    assert len(kept) == metrics.MAX_OBSERVATIONS
    assert max(kept) >= metrics.MAX_OBSERVATIONS
    assert 3_000 < sum(kept) / len(kept) < 7_000


async def test_failed_database_connects_are_counted() -> None:
    """A connection refused by the database adds one to db.connect_failed."""
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    before = metrics.snapshot().get(metrics.DB_CONNECT_FAILED, 0)
    with pytest.raises(ConnectFailed):
        async with engine.connect():
            pass
    await engine.dispose()
    assert metrics.snapshot()[metrics.DB_CONNECT_FAILED] == before + 1


async def test_observations_are_published_as_value_lists(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A flush publishes each observed name as a list of values in milliseconds."""
    metrics.reset()
    publisher = CounterPublisher("staging")
    publisher.deltas(metrics.snapshot())
    metrics.observe("test.publisher.latency_ms", 3.0)
    metrics.observe("test.publisher.latency_ms", 5.0)
    assert await publisher.flush() == 1
    line = next(json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x)
    assert line["test.publisher.latency_ms"] == [3.0, 5.0]
    (definition,) = [
        m
        for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        if m["Name"] == "test.publisher.latency_ms"
    ]
    assert definition["Unit"] == "Milliseconds"


async def test_gauges_are_published_at_every_flush(capsys: pytest.CaptureFixture[str]) -> None:
    """A registered gauge is read and published at each flush, changed or not, until it is
    forgotten by the reader that registered it."""
    metrics.reset()
    publisher = CounterPublisher("staging")
    publisher.deltas(metrics.snapshot())
    level = [1.0]

    def read() -> float:
        return level[0]

    metrics.gauge("test.gauge.level", read)
    try:
        for expected in (1.0, 1.0, 0.0):
            level[0] = expected
            assert await publisher.flush() >= 1
            out = capsys.readouterr().out.splitlines()
            line = next(json.loads(x) for x in out if '"_aws"' in x)
            assert line["test.gauge.level"] == expected
        metrics.forget_gauge("test.gauge.level", lambda: 0.0)  # another reader: kept
        assert "test.gauge.level" in metrics.read_gauges()
    finally:
        metrics.forget_gauge("test.gauge.level", read)
    assert "test.gauge.level" not in metrics.read_gauges()


async def test_the_redis_fallback_gauge_follows_the_breaker(make_settings: SettingsFactory) -> None:
    """`redis.fallback.active` reads 0 while Redis is in use, 1 once the breaker opened on an
    unreachable Redis, and is withdrawn when the app stops."""
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    async with redis_lifespan(Litestar(), settings=settings) as kv:
        assert metrics.read_gauges()[REDIS_FALLBACK_ACTIVE] == 0.0
        for _ in range(kv.breaker.failure_threshold):
            kv.breaker.record_failure(ConnectionError("refused"))
        for _ in range(100):  # the confirming PING runs in a thread
            if not kv.breaker.is_closed:
                break
            await asyncio.sleep(0.02)
        assert metrics.read_gauges()[REDIS_FALLBACK_ACTIVE] == 1.0
    assert REDIS_FALLBACK_ACTIVE not in metrics.read_gauges()


def test_every_observation_is_kept_with_the_same_chance() -> None:
    """Over 400 intervals of 1,000 values each, the first and the last hundred values are
    each kept about a tenth of the time (40 of 400 per value on average): the sample is
    uniform over the interval, neither the first values' (as a plain cap would keep) nor
    the last ones' (as a sampler skipping too far would)."""
    metrics.reset()
    kept_count = [0] * 1_000
    for _ in range(400):
        for i in range(1_000):
            metrics.observe("test.uniform", float(i))
        for value in metrics.drain_observations()["test.uniform"]:
            kept_count[int(value)] += 1
    assert sum(kept_count) == 400 * metrics.MAX_OBSERVATIONS
    first, last = sum(kept_count[:100]) / 100, sum(kept_count[-100:]) / 100
    # Each mean is of 100 counts with standard deviation ~6: its standard error is ~0.6.
    assert 36 < first < 44, first
    assert 36 < last < 44, last
