"""`cortiware audit prune [--dry-run] [--archive-to URL]` (contract §1)."""

from __future__ import annotations

import click
from sqlalchemy.ext.asyncio import async_sessionmaker

from cortiware.audit.archive import ArchiveError, archive_for
from cortiware.audit.retention import PruneResult, effective_retention_days, prune
from cortiware.console import fail, load_settings, run_async
from cortiware.db.engine import create_engine

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """Audit log maintenance."""


@audit.command("prune")
@click.option("--dry-run", is_flag=True, help="Count the rows past retention; change nothing.")
@click.option(
    "--archive-to",
    metavar="URL",
    default=None,
    help="Write rows as JSON lines before deleting them: file:///dir or s3://bucket/prefix.",
)
@click.option(
    "--batch-size", default=1000, show_default=True, type=click.IntRange(1, 50_000), hidden=True
)
def prune_command(dry_run: bool, archive_to: str | None, batch_size: int) -> None:
    """Delete audit rows older than the retention period, in batches."""

    settings = load_settings()
    archive = None
    if archive_to is not None:
        # Checked in a dry run too, so the dry run proves the real run's URL is usable;
        # `prune` never writes to the archive in a dry run.
        try:
            archive = archive_for(archive_to)
        except ArchiveError as exc:
            fail(str(exc))

    async def run() -> tuple[int, PruneResult]:
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
            async with sessionmaker() as session:
                days = await effective_retention_days(session, settings.audit_retention_days)
            result = await prune(
                sessionmaker, days=days, dry_run=dry_run, archive=archive, batch_size=batch_size
            )
            return days, result
        finally:
            await engine.dispose()

    days, result = run_async(run)
    cutoff = result.cutoff.isoformat(timespec="seconds")
    if dry_run:
        click.echo(
            f"dry run: {result.matched} audit row(s) older than {days} day(s) "
            f"(before {cutoff}) would be "
            + (f"archived to {archive} and deleted" if archive is not None else "deleted")
        )
        return
    where = f", archived to {archive}" if archive is not None else ""
    click.echo(
        f"deleted {result.deleted} audit row(s) older than {days} day(s) "
        f"(before {cutoff}) in {result.batches} batch(es){where}"
    )
