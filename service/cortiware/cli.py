"""The `cortiware` command line (contract §1). Problems print one line, never a traceback."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import click

from cortiware.audit.cli import audit
from cortiware.billing.cli import stripe_group
from cortiware.settings import VARIABLES, AppEnv, Settings, SettingsError
from cortiware.smoke import smoke_command

__all__ = ["dependency_problem", "main"]

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
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
    import redis.exceptions
    from sqlalchemy.exc import DBAPIError, StatementError

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
    """Run a coroutine (a dependency failure becomes one line in `_Commands.invoke`)."""
    return asyncio.run(fn())  # type: ignore[arg-type]


class _Commands(click.Group):
    """The `cortiware` group: a dependency failure in any command is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            problem = dependency_problem(exc)
            if problem is None:
                raise
            fail(problem)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cortiware")
def main() -> None:
    """Cortiware platform service."""


WORKER_HEALTHCHECK_TIMEOUT: Final = 60
"""Seconds a uvicorn worker has to answer its supervisor (start-up included)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(host: str, port: int, workers: int, reload: bool) -> None:
    """Run the HTTP service."""
    import uvicorn

    from cortiware.logging import configure_logging

    settings = load_settings()
    configure_logging()
    if settings.is_embedded_database:
        import structlog

        structlog.get_logger("cortiware.cli").info(
            "embedded default: SQLite file, in-memory stores; migrating and seeding it",
            database=settings.database_url,
            redis="in-memory" if settings.redis_url is None else "Redis",
        )
        run_async(lambda: _migrate(settings, seed_after=True))
    if settings.app_env is AppEnv.DEVELOPMENT and "BASE_URL" in settings.uses_dev_defaults:
        # Links (invites, Stripe return URLs) follow the address served, not a fixed :8000;
        # the app is built from the environment by uvicorn, in this process or its workers.
        os.environ["BASE_URL"] = f"http://{_url_host(host)}:{port}"
    uvicorn.run(
        "cortiware.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        reload_dirs=["service"] if reload else None,
        log_config=None,
        proxy_headers=False,  # client IP is resolved by TRUSTED_PROXIES, not uvicorn
        server_header=False,
        timeout_graceful_shutdown=20,
        # uvicorn kills a worker that does not answer its supervisor's ping in time, and a
        # spawned worker answers only after importing `__main__` (this CLI, hence the whole
        # app): 2 s idle, over 10 s on a loaded 2-vCPU host, where the default 5 s made
        # every worker die and restart forever. The ping is answered by a thread, so a
        # worker busy serving still answers at once; only start-up needs the margin.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
    )


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def _migrate(settings: Settings, *, seed_after: bool) -> list[str]:
    from cortiware.db import migrate

    await migrate.upgrade(settings.database_url_unpooled)
    if not seed_after:
        return []
    return await _seed(settings)


async def _seed(settings: Settings) -> list[str]:
    from sqlalchemy.ext.asyncio import AsyncSession

    from cortiware.db.engine import create_engine
    from cortiware.seed import seed

    engine = create_engine(settings.database_url_unpooled, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            return await seed(session)
    finally:
        await engine.dispose()


@main.command()
def migrate() -> None:
    """Apply every database migration (Alembic upgrade head); safe to run twice."""
    from cortiware.db.migrate import current_revision

    settings = load_settings()
    run_async(lambda: _migrate(settings, seed_after=False))
    revision = run_async(lambda: current_revision(settings.database_url_unpooled))
    click.echo(f"database at revision {revision}")


@main.command()
def seed() -> None:
    """Create the global monetization config and a default plan and price if missing."""
    settings = load_settings()
    created = run_async(lambda: _seed(settings))
    click.echo("seeded: " + ", ".join(created) if created else "seed: nothing to do")


@main.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
def config_check() -> None:
    """Validate the environment and print every variable (never a secret's value)."""
    import os

    problems: list[str] = []
    try:
        settings: Settings | None = Settings.from_env()
    except SettingsError as exc:
        settings, problems = None, exc.problems
    app_env = os.environ.get("APP_ENV", "development") or "development"
    deployed = app_env in ("staging", "production")
    rows: list[tuple[str, str, str]] = []
    for var in VARIABLES:
        need = "required" if var.required_deployed and deployed else "optional"
        state = "set" if os.environ.get(var.name, "").strip() else "missing"
        if state == "missing" and settings and var.name in settings.uses_dev_defaults:
            state = "dev default"
        rows.append((var.name, need, state))
    width = max(len(r[0]) for r in rows)
    click.echo(f"APP_ENV={app_env}")
    click.echo(f"{'variable'.ljust(width)}  {'need':8}  state")
    for name, need, state in rows:
        click.echo(f"{name.ljust(width)}  {need:8}  {state}")
    if problems:
        click.echo(f"{len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    click.echo("configuration OK")


main.add_command(audit)  # `cortiware audit prune`
main.add_command(smoke_command)  # `cortiware smoke --base-url URL [--expect-version TAG]`
main.add_command(stripe_group)  # `cortiware stripe setup | sync | replay`

if __name__ == "__main__":  # pragma: no cover
    main()
