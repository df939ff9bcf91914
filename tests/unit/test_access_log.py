"""The access log: one JSON line per request with the fields of every other log line,
written in batches, sampled only for fast successful reads when configured."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Callable

import pytest
import structlog
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException
from litestar.testing import TestClient

from cortiware.logging import FLUSH_AFTER, access_log, configure_logging
from cortiware.middleware.request_context import RequestContextMiddleware
from cortiware.route_policy import declare


@get("/api/read", sync_to_thread=False)
def read() -> dict[str, str]:
    return {"ok": "yes"}


@post("/api/write", sync_to_thread=False)
def write() -> dict[str, str]:
    return {"ok": "yes"}


@get("/api/missing", sync_to_thread=False)
def missing() -> None:
    raise NotFoundException("no")


@get("/api/quiet", sync_to_thread=False, opt=declare(access_log=False))
def quiet() -> dict[str, str]:
    return {"ok": "yes"}


@get("/api/quiet-failing", sync_to_thread=False, opt=declare(access_log=False))
def quiet_failing() -> None:
    raise NotFoundException("no")


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if '"cortiware.access"' in line]


def test_access_line_has_the_fields_of_a_structlog_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An access line carries what structlog writes for the same event (level, logger,
    ISO UTC timestamp, bound request id) and redacts secret-looking fields."""
    configure_logging()
    structlog.contextvars.bind_contextvars(request_id="abc")
    try:
        structlog.get_logger("cortiware.access").info("request", method="GET", status=200)
        access_log.request(method="GET", status=200, token="t0ps3cret")
    finally:
        structlog.contextvars.clear_contextvars()
    reference, line = _lines(capsys.readouterr().out)
    assert list(line) == [*list(reference)[:2], "token", *list(reference)[2:]]
    assert line["request_id"] == "abc"
    assert line["token"] == "[redacted]"
    assert (line["level"], line["logger"], line["event"]) == ("info", "cortiware.access", "request")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", str(line["timestamp"]))


async def test_lines_are_buffered_and_written_together_within_the_flush_delay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Inside an event loop lines are buffered: not written at once, nor on the loop's next
    iterations, but together within `FLUSH_AFTER` of the first."""
    configure_logging()
    access_log.request(method="GET", path="/a", status=200)
    access_log.line("GET", "/b", 200, 1.5)
    for _ in range(3):
        await asyncio.sleep(0)
    assert _lines(capsys.readouterr().out) == []
    await asyncio.sleep(FLUSH_AFTER * 1.5)
    lines = _lines(capsys.readouterr().out)
    assert [line["path"] for line in lines] == ["/a", "/b"]
    assert lines[1]["duration_ms"] == 1.5


async def test_a_full_buffer_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    """64 KiB of waiting lines are written without waiting for the delay."""
    configure_logging()
    long_path = "/" + "x" * 1000
    for _ in range(70):
        access_log.line("GET", long_path, 200, 1.0)
    written = len(_lines(capsys.readouterr().out))
    access_log.flush()
    assert 50 <= written < 70, written  # one 64 KiB batch; the rest waits
    assert len(_lines(capsys.readouterr().out)) == 70 - written


def test_no_line_while_the_access_logger_is_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    """Raising the `cortiware.access` logger's level switches the access lines off."""
    configure_logging(level="WARNING")
    try:
        access_log.request(method="GET", path="/quiet", status=200)
    finally:
        configure_logging()
    assert _lines(capsys.readouterr().out) == []


def _lines_of(
    capsys: pytest.CaptureFixture[str],
    app: Litestar,
    requests: Callable[[TestClient[Litestar]], tuple[object, ...]],
) -> list[dict[str, object]]:
    """The access lines written while `requests` ran against `app`; every value `requests`
    returns (an X-Request-ID, a status check) must be truthy."""
    configure_logging()
    with TestClient(app) as client:
        capsys.readouterr()
        assert all(requests(client))
    access_log.flush()
    return _lines(capsys.readouterr().out)


def test_sampling_leaves_out_only_fast_successful_reads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With ACCESS_LOG_SAMPLE_RATE=0 a successful GET is not logged; a write and an error
    still are, and every request still gets its X-Request-ID."""
    lines = _lines_of(
        capsys,
        Litestar([read, write, missing], middleware=[RequestContextMiddleware(0.0)]),
        lambda client: (
            client.get("/api/read").headers["x-request-id"],
            client.post("/api/write").status_code == 201,
            client.get("/api/missing").status_code == 404,
        ),
    )
    logged = [(line["method"], line["path"]) for line in lines]
    assert logged == [("POST", "/api/write"), ("GET", "/api/missing")]


def test_a_route_declaring_no_access_log_logs_only_its_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`declare(access_log=False)` (the health probes): a fast successful read gets no line
    even unsampled, an error does, and both still get their X-Request-ID."""
    lines = _lines_of(
        capsys,
        Litestar([read, quiet, quiet_failing], middleware=[RequestContextMiddleware()]),
        lambda client: (
            client.get("/api/quiet").headers["x-request-id"],
            client.get("/api/quiet-failing").status_code == 404,
            client.get("/api/read").status_code == 200,
        ),
    )
    logged = [(line["path"], line["status"]) for line in lines]
    assert logged == [("/api/quiet-failing", 404), ("/api/read", 200)]


def test_every_request_is_logged_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Without sampling each request gets exactly one access line with its request id."""
    configure_logging()
    app = Litestar([read], middleware=[RequestContextMiddleware()])
    with TestClient(app) as client:
        capsys.readouterr()
        ids = [client.get("/api/read").headers["x-request-id"] for _ in range(3)]
    access_log.flush()
    lines = _lines(capsys.readouterr().out)
    assert [line["request_id"] for line in lines] == ids
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def test_access_line_is_encoded_as_every_other_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Access lines and structlog's lines share one encoder, to the character: compact
    valid JSON in UTF-8, NaN as null (never the invalid `NaN`), the `repr` of what JSON
    cannot hold."""
    configure_logging()
    odd = object()
    fields = {"method": "GET", "path": "/é\n", "status": 200, "duration_ms": float("nan")}
    structlog.contextvars.bind_contextvars(request_id="abc")
    try:
        structlog.get_logger("cortiware.access").info("request", **fields, odd=odd)
        access_log.request(**fields, odd=odd)
        access_log.flush()
    finally:
        structlog.contextvars.clear_contextvars()
    reference, line = [
        text for text in capsys.readouterr().out.splitlines() if "cortiware.access" in text
    ]
    stamp = re.compile(r'"timestamp":"[^"]+"')
    assert stamp.sub("", line) == stamp.sub("", reference), (line, reference)
    event = json.loads(line, parse_constant=_not_json)  # Python's parser takes NaN, others not
    assert event["duration_ms"] is None
    assert event["odd"] == repr(odd)
    assert '"path":"/é\\n"' in line


async def test_a_closed_stream_loses_the_lines_without_raising() -> None:
    """A stream closed under the log (a test's captured stdout, a broken pipe) costs the
    lines, as with a stdlib handler, and raises nothing into the loop or the request."""
    configure_logging()
    closed = io.StringIO()
    closed.close()
    previous = access_log.stream
    access_log.stream = closed
    try:
        access_log.request(method="GET", path="/a", status=200)
        access_log.flush()
        access_log.request(method="GET", path="/b", status=200)
        await asyncio.sleep(0)  # the scheduled flush runs and fails quietly
    finally:
        access_log.stream = previous
