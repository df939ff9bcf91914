"""What every command shares: one-line failures with secrets scrubbed, settings, asyncio.

Below `cortiware.cli` (which assembles the command groups), so a domain's command group
(`cortiware audit`, `cortiware stripe`) uses these without importing the CLI that imports it.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Final, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import click
import redis.exceptions
from sqlalchemy.exc import DBAPIError, StatementError

from cortiware.db.outage import ConnectFailed
from cortiware.settings import Settings, SettingsError

__all__ = ["dependency_problem", "fail", "load_settings", "run_async"]

T = TypeVar("T")

# `scheme://user:password@` anywhere in a message: the password is never printed.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")
_secrets: set[str] = set()
"""Connection-URL passwords of the loaded settings, scrubbed from every printed problem."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit."""
    click.echo(f"cortiware: {message}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    """Validated settings, or exit 1 listing every problem."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))
    for url in (settings.database_url, settings.database_url_unpooled, settings.redis_url):
        password = urlsplit(url).password if url else None
        if password:
            _secrets.update({password, unquote(password)})
    return settings


def _redact(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


_NETWORK_ERRNOS: Final = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
)
"""Socket errors that are not `ConnectionError`s; a file error (`--archive-to`) is not one."""


def _is_network_error(exc: BaseException) -> bool:
    """Refused, reset or unreachable: not a file error such as a bad `--archive-to`."""
    if isinstance(exc, ConnectionError | socket.herror):
        return True
    return isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS


def dependency_problem(exc: BaseException) -> str | None:
    """One line naming a database, Redis or network failure (no secret), or None.

    None means `exc` is not such a failure (a bug, say) and should propagate.
    """
    if isinstance(exc, ConnectFailed) and exc.__cause__ is not None:
        # The engine wraps every failure to connect; the driver's own error names the cause.
        exc = exc.__cause__
    cause: BaseException = exc
    if isinstance(exc, StatementError) and exc.orig is not None:
        # SQLAlchemy's own text adds the SQL and its parameters: only the driver's error.
        cause = exc.orig.__cause__ or exc.orig
    driver_errors: tuple[type[BaseException], ...] = (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    )
    if isinstance(cause, driver_errors) or cause is not exc:
        message = f"database error: {_first_line(cause)}"
    elif isinstance(exc, DBAPIError):
        # Only errors the database or its driver raised: SQLAlchemy's own (an invalid
        # request, a statement that does not compile) are bugs and keep their traceback.
        message = f"database error: {_first_line(exc)}"
    elif isinstance(exc, redis.exceptions.RedisError):
        message = f"Redis error: {_first_line(exc)}"
    elif isinstance(exc, socket.gaierror):
        message = f"cannot resolve a host name: {exc.strerror or _first_line(exc)}"
    elif isinstance(exc, TimeoutError):
        message = "timed out reaching a dependency" + (f": {exc}" if str(exc) else "")
    elif _is_network_error(exc):
        assert isinstance(exc, OSError)
        message = f"cannot reach a dependency: {exc.strerror or _first_line(exc)}"
    else:
        return None
    return _redact(message)


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine (a dependency failure becomes one line in `cortiware.cli`)."""
    return asyncio.run(fn())  # type: ignore[arg-type]
