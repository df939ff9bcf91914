"""`cortiware stripe setup | sync | replay`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.billing.client import make_stripe_client
from cortiware.billing.setup import setup_stripe, webhook_url
from cortiware.billing.sync import SyncReport, sync_subscriptions
from cortiware.cache.read_through import command_cache
from cortiware.console import fail, load_settings, run_async
from cortiware.db.base import to_utc
from cortiware.db.engine import create_engine
from cortiware.errors import UpstreamError
from cortiware.webhooks.stripe_events import ReplayReport, replay

__all__ = ["parse_since", "stripe_group"]

_RELATIVE = re.compile(r"^(\d+)([mhd])$", re.ASCII)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_SINCE_DAYS = 3650
"""The furthest back `--since` reaches as a duration (ten years; events are younger)."""
_MAX_SINCE = timedelta(days=MAX_SINCE_DAYS)


def parse_since(raw: str, *, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 date/time (UTC when no offset) or a duration like 30m, 24h, 7d.

    Returns an aware datetime in UTC.

    Raises:
        click.BadParameter: neither form, a duration longer than MAX_SINCE_DAYS, or a
            date/time that cannot be expressed in UTC (e.g. 9999-12-31T23:59:59-23:00).
    """
    text = raw.strip()
    match = _RELATIVE.match(text)
    if match:
        # Compared as digits first: a fuzzed 99999999999d overflows timedelta itself.
        count = int(match.group(1)) if len(match.group(1)) <= 9 else None
        delta = timedelta(**{_UNITS[match.group(2)]: count}) if count is not None else None
        if delta is None or delta > _MAX_SINCE:
            raise click.BadParameter(f"a duration must be at most {MAX_SINCE_DAYS} days")
        return (now or datetime.now(UTC)) - delta
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("use an ISO 8601 date/time or a duration like 24h") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return to_utc(parsed)
    except ValueError:
        raise click.BadParameter("the date/time is outside the range UTC can express") from None


@click.group("stripe")
def stripe_group() -> None:
    """Stripe: webhook endpoint and portal setup, reconciliation, event replay."""


@stripe_group.command("setup")
def setup_command() -> None:
    """Create or update the webhook endpoint (five events) and the Billing Portal config."""
    settings = load_settings()
    client = make_stripe_client(settings)
    try:
        report = run_async(lambda: setup_stripe(client, settings))
    except UpstreamError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(
        f"webhook endpoint {report.endpoint_id} ({webhook_url(settings)}): {report.endpoint_action}"
    )
    click.echo(
        f"billing portal configuration {report.portal_configuration_id}: {report.portal_action}"
    )
    if report.signing_secret:
        click.echo(
            "signing secret (shown once; add it to STRIPE_WEBHOOK_SECRET): " + report.signing_secret
        )


@stripe_group.command("sync")
def sync_command() -> None:
    """Re-fetch every subscription from Stripe and reconcile, reporting each difference."""
    settings = load_settings()
    client = make_stripe_client(settings)

    async def run() -> SyncReport:
        async with (
            _sessionmaker(settings.database_url) as sessionmaker,
            command_cache(settings) as cache,
        ):
            return await sync_subscriptions(client, sessionmaker, cache=cache)

    try:
        report = run_async(run)
    except UpstreamError as exc:
        raise click.ClickException(exc.detail) from None
    for diff in report.differences:
        click.echo(
            f"{diff.stripe_subscription_id}: {diff.field}: {diff.local!r} -> {diff.remote!r}"
        )
    for stripe_id in report.created:
        click.echo(f"{stripe_id}: had no local row; linked")
    for stripe_id in report.unmatched:
        click.echo(f"{stripe_id}: no organization matches (metadata or customer); skipped")
    for stripe_id in report.not_in_stripe:
        click.echo(f"{stripe_id}: local row not listed by Stripe")
    click.echo(
        f"checked {report.checked}, updated {report.updated}, "
        f"differences {len(report.differences)}, unmatched {len(report.unmatched)}"
    )


@stripe_group.command("replay")
@click.option("--since", help="Only events received since (ISO 8601, or 30m / 24h / 7d).")
def replay_command(since: str | None) -> None:
    """Process stored failed and unmatched Stripe events again (newest-wins still holds)."""
    try:
        cutoff = parse_since(since) if since is not None else None
    except click.BadParameter as exc:
        fail(f"--since: {exc.message}")
    settings = load_settings()

    async def run() -> ReplayReport:
        async with (
            _sessionmaker(settings.database_url) as sessionmaker,
            command_cache(settings) as cache,
        ):
            return await replay(sessionmaker, since=cutoff, cache=cache)

    report = run_async(run)
    parts = ", ".join(f"{status} {n}" for status, n in sorted(report.counts.items()))
    click.echo(f"replayed {report.total} event(s)" + (f": {parts}" if parts else ""))
    if report.counts.get("failed"):
        raise SystemExit(1)


@asynccontextmanager
async def _sessionmaker(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on an engine made for one command, disposed afterwards."""
    engine = create_engine(url, pool_size=2)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()
