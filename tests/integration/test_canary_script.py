"""The Synthetics canary's script, run against a real `cortiware serve` in each health state.

The infra tests only see the script as a string inside a mocked canary; here it runs for
real, so a canary that would page on a healthy service (or stay green on a broken one) fails
a test. The only stand-in is the Synthetics runtime's logger module, which exists only in
AWS's Lambda layer.
"""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from infra.components.canary import CANARY_SCRIPT

from tests.support.servers import cortiware_serve, free_port

Handler = Callable[[object, object], str]


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Handler]:
    """Loads the canary module as Synthetics would, with `BASE_URL` and `CHECK` set."""
    common = types.ModuleType("aws_synthetics.common")
    common.synthetics_logger = logging.getLogger("synthetics")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aws_synthetics", types.ModuleType("aws_synthetics"))
    monkeypatch.setitem(sys.modules, "aws_synthetics.common", common)

    def load(base_url: str, check: str = "health") -> Handler:
        monkeypatch.setenv("BASE_URL", base_url)
        monkeypatch.setenv("CHECK", check)
        namespace: dict[str, object] = {"__name__": "endpoint_checks"}
        exec(compile(CANARY_SCRIPT, "endpoint_checks.py", "exec"), namespace)  # noqa: S102
        handler = namespace["handler"]
        assert callable(handler)
        return handler  # type: ignore[return-value]

    return load


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Zero configuration: SQLite file and memory stores, health `healthy`."""
    with cortiware_serve(tmp_path_factory.mktemp("canary-healthy")) as base:
        yield base


def test_canary_passes_on_a_healthy_service(
    canary: Callable[[str], Handler], healthy: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="synthetics"):
        assert canary(healthy + "/")(None, None) == "healthy"
    assert "health ok: healthy" in caplog.text


def test_canary_passes_on_a_degraded_service(
    canary: Callable[[str], Handler], tmp_path: Path
) -> None:
    """Redis unreachable: the service serves from memory, says `degraded` with 200, and the
    canary (which pages on failure) stays green: a degraded service is still serving."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with cortiware_serve(tmp_path, {"REDIS_URL": dead_redis}) as base:
        assert canary(base)(None, None) == "degraded"


def test_canary_fails_on_an_unhealthy_service_and_says_why(
    canary: Callable[[str], Handler], tmp_path: Path
) -> None:
    """Database unreachable: 503 `unhealthy`; the canary run fails naming the failing check."""
    dead_database = f"postgresql://postgres@127.0.0.1:{free_port()}/cortiware"
    with (
        cortiware_serve(tmp_path, {"DATABASE_URL": dead_database}) as base,
        pytest.raises(RuntimeError) as failure,
    ):
        canary(base)(None, None)
    message = str(failure.value)
    assert message.startswith(f"{base}/api/health answered 503 with status 'unhealthy'")
    assert "database=down" in message


def test_canary_fails_when_nothing_answers(canary: Callable[[str], Handler]) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match=rf"^{base}/api/health unreachable: "):
        canary(base)(None, None)


@pytest.mark.parametrize(
    ("check", "answer"), [("verify", "refused"), ("provider", "login"), ("owner", "login")]
)
def test_endpoint_canaries_pass_on_the_real_service(
    canary: Callable[[str, str], Handler],
    healthy: str,
    check: str,
    answer: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify refuses a missing token with 400 problem+json; /provider and /owner lead an
    anonymous visitor to the login form: each check passes against the real service."""
    with caplog.at_level(logging.INFO, logger="synthetics"):
        assert canary(healthy, check)(None, None) == answer
    assert f"{'verify' if check == 'verify' else '/' + check} ok" in caplog.text


@pytest.mark.parametrize("check", ["verify", "provider", "owner"])
def test_endpoint_canaries_fail_on_a_wrong_answer(
    canary: Callable[[str, str], Handler], healthy: str, check: str
) -> None:
    """Pointed at a path prefix that answers 404 everywhere, every endpoint check fails and
    names what it saw instead."""
    with pytest.raises(RuntimeError, match=r"answered 404"):
        canary(healthy + "/no-such-prefix", check)(None, None)
