"""Structured JSON logs (structlog), one object per line, request id bound per request."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "redact", "scrub_database_detail", "scrub_text"]

_SECRET_KEYS = re.compile(
    r"(password|secret|token|authorization|cookie|api[_-]?key|dsn|signature)", re.I
)
REDACTED = "[redacted]"


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
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our request middleware writes one access line with the request id; uvicorn's is redundant.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Alembic announces every plugin it loads at INFO; only its warnings matter to operators.
    logging.getLogger("alembic").setLevel(logging.WARNING)
