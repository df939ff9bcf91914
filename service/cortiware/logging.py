"""Structured JSON logs (structlog), one object per line, request id bound per request.

Every line goes through structlog and the standard library's root handler, except the
access log (`access_log`, one line per request), which is built and written directly: same
fields, same stream, a fraction of the cost.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import re
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import msgspec
import structlog

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "AccessLog",
    "access_log",
    "add_request_id",
    "configure_logging",
    "redact",
    "scrub_database_detail",
    "scrub_text",
]

_SECRET_KEYS = re.compile(
    r"(password|secret|token|authorization|cookie|api[_-]?key|dsn|signature)", re.I
)
REDACTED = "[redacted]"
REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("cortiware_request_id", default=None)
"""The id of the request being handled (set by the request context in the request's own
task), written as `request_id` on every line logged meanwhile. One variable of our own
rather than structlog's `bind_contextvars`/`reset_contextvars`, which cost about 1.4 µs of a
30 µs `GET /api/health/live` in process (a dict, a prefixed name and a token map each way)."""


def add_request_id(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the current `REQUEST_ID` as `request_id`, where
    `merge_contextvars` would put a bound one (an event's own `request_id` wins)."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of any secret-looking key."""
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = REDACTED
    return event


# PostgreSQL's error DETAIL quotes the row's values ("Key (email)=(a@b.c) already exists",
# "Failing row contains (...)"), and asyncpg puts it into the exception's text. The engine's
# `hide_parameters` hides bound parameters, not this.
_PG_DETAIL = re.compile(r"DETAIL:[^\n]*")


def scrub_text(text: str) -> str:
    """`text` without PostgreSQL DETAIL lines (they quote column values)."""
    return _PG_DETAIL.sub("DETAIL: [hidden]", text)


def scrub_database_detail(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor (after `format_exc_info`): scrub DETAIL from every string value."""
    for key, value in event.items():
        if isinstance(value, str) and "DETAIL:" in value:
            event[key] = scrub_text(value)
    return event


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and stdlib logging (uvicorn, sqlalchemy) through one JSON renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            scrub_database_detail,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    access_log.flush()  # lines of the previous configuration go to its stream
    access_log.stream = handler.stream
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our request middleware writes one access line with the request id; uvicorn's is
    # redundant. Its protocol asks `hasHandlers()` once per connection and, when true, builds
    # the line's arguments on every response even when the level then drops it (about 2 µs
    # of a `/live` answer, py-spy): so no handler and no propagation, as uvicorn's own
    # `access_log=False` leaves it (this runs after uvicorn configured its loggers).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    uvicorn_access.setLevel(logging.WARNING)
    # Alembic announces every plugin it loads at INFO; only its warnings matter to operators.
    logging.getLogger("alembic").setLevel(logging.WARNING)


ACCESS_LOGGER: Final = "cortiware.access"
"""The `logger` field of access lines (and the stdlib logger whose level switches them)."""
_MAX_BUFFERED: Final = 64 * 1024
FLUSH_AFTER: Final = 0.1
"""Seconds an access line may wait in the buffer (nginx's `access_log … buffer= flush=`):
written when the buffer reaches `_MAX_BUFFERED`, this long after its batch's first line, at
the service's shutdown, or at exit, whichever comes first."""
_ENCODER: Final = msgspec.json.Encoder(enc_hook=repr)
"""Every log line's JSON encoder (structlog's renderer and the access log): msgspec, at about
a twelfth of `json.dumps`'s cost per access line (0.3 against 4.3 µs, `timeit`), compact, UTF-8
(not `\\u` escapes), `null` for NaN (which `json.dumps` writes as the invalid `NaN`), UUIDs and
datetimes as their strings, and the `repr` of anything else JSON cannot hold."""


def _dumps(obj: Any, **_ignored: Any) -> str:
    """structlog's `JSONRenderer` serializer (it passes `json.dumps` options, unused here)."""
    return _ENCODER.encode(obj).decode()


def _secret_key(key: str) -> bool:
    return key != "event" and _SECRET_KEYS.search(key) is not None


class AccessLog:
    """One JSON line per request (`event: request`), written in batches.

    The fields are those of every other line (`event`, `level`, `logger`, `timestamp` in
    UTC ISO 8601, the bound context such as `request_id`, secret-looking keys redacted), but
    the line is built directly and buffered as nginx buffers its access log: written when
    64 KiB are waiting or `FLUSH_AFTER` (0.1 s) after the first waiting line, at the
    service's shutdown (`create_app`'s lifespan) and at exit. Through structlog and the
    stdlib handler (a record, the processor chain, a flush per line) it cost about 12 % of a
    cached `GET /api/plans` (py-spy); with a write per event-loop iteration the line still
    cost 11-19 µs of `/live` when each request had an iteration of its own (`python -m
    benchmarks.inprocess --concurrency 1`, access log on and off). A process killed outright
    loses at most its last 0.1 s of lines.
    Lines go to the stream the other lines go to, and only while the `cortiware.access`
    logger is enabled for INFO.
    """

    __slots__ = (
        "_flush_scheduled",
        "_lines",
        "_logger",
        "_second",
        "_secret",
        "_size",
        "stream",
    )

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._size = 0
        self._flush_scheduled = False
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._second: tuple[int, str] = (-1, "")
        """The last whole second formatted, and its `YYYY-MM-DDTHH:MM:SS`."""
        self._secret: dict[str, bool] = {}
        """Field name -> whether `redact` would hide it (names are few and fixed)."""
        self.stream: TextIO | None = None
        """Where lines go: the stream of the root handler `configure_logging` installed (so
        access lines go wherever the other lines go), else `sys.stdout` at write time."""

    def request(self, **fields: Any) -> None:
        """Log one request with `fields` (method, path, status, duration_ms, and any other)."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        event = {key: REDACTED if self._is_secret(key) else value for key, value in fields.items()}
        event["event"] = "request"
        self._write(event)

    def line(self, method: Any, path: Any, status: int, duration_ms: float) -> None:
        """Log one request: `request(method=…, path=…, status=…, duration_ms=…)`, the call
        the request middleware makes on every request, without building keyword arguments
        (and without checking those four names, which are not secret-looking)."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        event = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "event": "request",
        }
        self._write(event)

    def _is_secret(self, key: str) -> bool:
        secret = self._secret.get(key)
        if secret is None:
            secret = self._secret[key] = _secret_key(key)
        return secret

    def _write(self, event: dict[str, Any]) -> None:
        # Keys in structlog's order, rendered with its JSONRenderer's serializer, so an
        # access line reads exactly like one written through structlog: the fields (checked
        # by the caller), then the bound context (a field of the same name wins), then these.
        for key, value in structlog.contextvars.get_contextvars().items():
            if key not in event:
                event[key] = REDACTED if self._is_secret(key) else value
        add_request_id(None, "", event)
        event["level"] = "info"
        event["logger"] = ACCESS_LOGGER
        event["timestamp"] = self._timestamp()
        line = _ENCODER.encode(event).decode() + "\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _MAX_BUFFERED:
            self.flush()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_scheduled = True
            loop.call_later(FLUSH_AFTER, self.flush)

    def _timestamp(self) -> str:
        # structlog's TimeStamper(fmt="iso", utc=True) format, with the date and time part
        # formatted once per second.
        now = time.time()
        second = int(now)
        if second != self._second[0]:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{self._second[1]}.{int((now - second) * 1_000_000):06d}Z"

    def flush(self) -> None:
        """Write the buffered lines now."""
        self._flush_scheduled = False
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        stream = self.stream or sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # closed or broken stream
            # As `logging.Handler.handleError`: the lines are lost, the error goes to stderr,
            # and nothing is raised into the event loop (where it would become an error
            # report of its own) or into the request that happened to flush.
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"--- access log: {len(text.splitlines())} lines lost ---\n")


access_log: Final = AccessLog()
"""The process's access log."""
atexit.register(access_log.flush)
