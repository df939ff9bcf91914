"""Structured logs: JSON lines with a request id, secrets redacted."""

from __future__ import annotations

import json

import pytest
import structlog

from cortiware.logging import configure_logging


def test_log_lines_are_json_with_context_and_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    """A log line is one JSON object carrying the bound request id, with secrets redacted."""
    configure_logging()
    structlog.contextvars.bind_contextvars(request_id="abc")
    try:
        structlog.get_logger("t").info("login", username="u", password="hunter2", api_key="k1")
    finally:
        structlog.contextvars.clear_contextvars()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["request_id"] == "abc"
    assert event["event"] == "login"
    assert event["password"] == "[redacted]"
    assert event["api_key"] == "[redacted]"
    assert "hunter2" not in line


def test_uvicorn_access_logger_has_no_handler_so_uvicorn_skips_its_line() -> None:
    """uvicorn asks `hasHandlers()` per connection and, when true, formats its access line's
    arguments on every response; ours (with the request id) replaces it."""
    import logging

    configure_logging()
    uvicorn_access = logging.getLogger("uvicorn.access")
    assert not uvicorn_access.hasHandlers()
    assert logging.getLogger("uvicorn.error").hasHandlers()  # its errors still reach ours
