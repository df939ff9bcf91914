"""The `cortiware` command line (contract §1). Problems print one line, never a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Final

import click
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app import create_app
from cortiware.audit.cli import audit
from cortiware.billing.cli import stripe_group
from cortiware.console import dependency_problem, fail, load_settings, run_async
from cortiware.db import migrate as migrations
from cortiware.db.engine import create_engine
from cortiware.db.roles import ensure_application_role
from cortiware.db_shell import db_group
from cortiware.logging import configure_logging
from cortiware.openapi import render_openapi
from cortiware.seed import seed as seed_database
from cortiware.serving import HeadWithBodyProtocol
from cortiware.serving import run as run_server
from cortiware.settings import AppEnv, Settings, config_report
from cortiware.smoke import smoke_command

__all__ = ["dependency_problem", "main"]


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

KEEP_ALIVE_TIMEOUT: Final = 75
"""Seconds an idle keep-alive connection stays open: longer than the load balancer's idle
timeout (60 s, `infra/components/load_balancer.py`), as AWS advises for ALB targets, so the
balancer closes idle connections and never writes a request into one the service is closing
(a reset, which the ALB answers 502). uvicorn's default, 5 s, did that under the onboarding
load run, whose users pause 3-8 s: one connection error on an invite post."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(host: str, port: int, workers: int, reload: bool) -> None:
    """Run the HTTP service."""
    settings = load_settings()
    configure_logging()
    if settings.is_embedded_database:
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
    run_server(
        "cortiware.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        reload_dirs=["service"] if reload else None,
        http=HeadWithBodyProtocol,  # a response's head and body in one write (serving.py)
        log_config=None,
        # The request middleware writes the access line (with the request id); uvicorn's
        # own, switched off by its level, would still format its arguments per response.
        access_log=False,
        proxy_headers=False,  # client IP is resolved by TRUSTED_PROXIES, not uvicorn
        server_header=False,
        timeout_graceful_shutdown=20,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
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
    await migrations.upgrade(settings.database_url_unpooled)
    if not settings.is_embedded_database:
        await ensure_application_role(settings.database_url_unpooled, settings.database_url)
    if not seed_after:
        return []
    return await _seed(settings)


async def _seed(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url_unpooled, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            return await seed_database(session)
    finally:
        await engine.dispose()


@main.command()
def migrate() -> None:
    """Apply every database migration (Alembic upgrade head); safe to run twice."""
    settings = load_settings()
    run_async(lambda: _migrate(settings, seed_after=False))
    revision = run_async(lambda: migrations.current_revision(settings.database_url_unpooled))
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
    app_env, rows, problems = config_report(os.environ)
    width = max(len(row.name) for row in rows)
    click.echo(f"APP_ENV={app_env.value if app_env else os.environ.get('APP_ENV', '').strip()}")
    click.echo(f"{'variable'.ljust(width)}  {'need':8}  state")
    for row in rows:
        click.echo(f"{row.name.ljust(width)}  {row.need:8}  {row.state}")
    if problems:
        click.echo(f"{len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    click.echo("configuration OK")


@main.command("openapi")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def openapi_command(path: Path | None) -> None:
    """Write the OpenAPI document (embedded defaults, no environment read) to PATH or stdout."""
    text = render_openapi(create_app(Settings.from_env({})))
    if path is None:
        click.echo(text, nl=False)
    else:
        path.write_text(text, encoding="utf-8")


main.add_command(audit)  # `cortiware audit prune`
main.add_command(db_group)  # `cortiware db shell [--write] [-c SQL]`
main.add_command(smoke_command)  # `cortiware smoke --base-url URL [--expect-version TAG]`
main.add_command(stripe_group)  # `cortiware stripe setup | sync | replay`

if __name__ == "__main__":  # pragma: no cover
    main()
