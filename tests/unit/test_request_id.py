"""Request ids generated when the caller sends none (or an unsafe one)."""

from __future__ import annotations

import json
import os
import re

import pytest
import structlog
from litestar import Litestar, get
from litestar.testing import TestClient

from cortiware.logging import access_log, configure_logging
from cortiware.middleware.request_context import RequestContextMiddleware, new_request_id


def test_ids_are_128_random_bits_in_hex_and_do_not_repeat() -> None:
    """Taken from a pool of `os.urandom` bytes: 32 hex digits, unique over several refills."""
    ids = [new_request_id() for _ in range(3000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_reuse_its_parents_ids() -> None:
    """The pool is emptied in a forked child: its next id is not the parent's next one."""
    new_request_id()  # the pool holds bytes the parent has not handed out
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    childs = os.read(read, 64).decode()
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{32}", childs)
    assert childs != new_request_id()


@get("/api/thing", sync_to_thread=False)
def thing() -> dict[str, str]:
    return {"ok": "yes"}


def test_each_response_gets_a_new_id_and_a_safe_incoming_one_is_kept() -> None:
    app = Litestar([thing], middleware=[RequestContextMiddleware()])
    with TestClient(app) as client:
        first, second = (client.get("/api/thing").headers["x-request-id"] for _ in range(2))
        kept = client.get("/api/thing", headers={"X-Request-ID": "abc-1"}).headers
    assert first != second
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert kept["x-request-id"] == "abc-1"


@get("/api/logs", sync_to_thread=False)
def logs() -> dict[str, str]:
    structlog.get_logger("cortiware.test").info("inside")
    return {"ok": "yes"}


def test_lines_logged_while_handling_carry_that_requests_id_and_no_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A line logged by a handler carries the id its response echoes; a line logged after
    the request carries none (the id is reset, not left to the next request)."""
    configure_logging()
    app = Litestar([logs], middleware=[RequestContextMiddleware()], logging_config=None)
    with TestClient(app) as client:
        capsys.readouterr()
        ids = [client.get("/api/logs").headers["x-request-id"] for _ in range(2)]
    structlog.get_logger("cortiware.test").info("after")
    access_log.flush()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    inside = [line for line in lines if line["event"] == "inside"]
    assert [line["request_id"] for line in inside] == ids
    after = next(line for line in lines if line["event"] == "after")
    assert "request_id" not in after
