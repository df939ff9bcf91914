"""`cortiware stripe sync`: re-fetch every subscription from Stripe and reconcile.

Each difference between Stripe and the database is reported, then the row is brought up
to date through the same newest-wins guard the webhooks use: the fetch counts as an event
created when the listing started, so an event created later still wins over it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.billing.client import stripe_call
from cortiware.cache import GROUP_ORGANIZATIONS, Cache
from cortiware.cache.read_through import invalidate_after_commit
from cortiware.db.models import Subscription
from cortiware.db.session import transaction
from cortiware.webhooks.subscription_sync import (
    STRIPE_SUBSCRIPTION_FIELDS,
    EventRef,
    Outcome,
    apply_subscription,
    subscription_values,
)

__all__ = ["Difference", "SyncReport", "sync_subscriptions"]

_COMPARED = STRIPE_SUBSCRIPTION_FIELDS


@dataclass(frozen=True, slots=True)
class Difference:
    """One field of one subscription that differed (`local` None: no local row)."""

    stripe_subscription_id: str
    field: str
    local: Any
    remote: Any


@dataclass
class SyncReport:
    """What `sync_subscriptions` found and did."""

    checked: int = 0
    updated: int = 0
    differences: list[Difference] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    """Stripe subscriptions that had no local row (now linked to their organization)."""
    unmatched: list[str] = field(default_factory=list)
    """Stripe subscriptions of no known organization (left alone)."""
    not_in_stripe: list[str] = field(default_factory=list)
    """Local rows whose Stripe subscription was not listed (reported only)."""


async def sync_subscriptions(
    client: stripe.StripeClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    cache: Cache | None = None,
) -> SyncReport:
    """Reconcile every Stripe subscription with its row; report each difference.

    Each row is reconciled in its own transaction; once one that changed commits, the cached
    organization views (which show subscription status) are dropped from `cache`.

    Raises:
        UpstreamError: Stripe failed (rows already reconciled stay reconciled).
    """
    report = SyncReport()
    started = int(time.time())
    seen: set[str] = set()
    async with stripe_call("list subscriptions"):
        listing = await client.v1.subscriptions.list_async({"status": "all", "limit": 100})
        async for remote in listing.auto_paging_iter():
            obj = remote.to_dict()
            seen.add(str(obj["id"]))
            async with transaction(sessionmaker) as session:
                if await _reconcile(session, obj, started, report):
                    invalidate_after_commit(session, cache, GROUP_ORGANIZATIONS)
    async with sessionmaker() as session:
        linked = (
            await session.execute(
                select(Subscription.stripe_subscription_id).where(
                    Subscription.stripe_subscription_id.is_not(None)
                )
            )
        ).scalars()
        report.not_in_stripe = sorted(str(s) for s in linked if s not in seen)
    return report


async def _reconcile(
    session: AsyncSession, obj: Mapping[str, Any], started: int, report: SyncReport
) -> bool:
    """Reconcile one subscription; True when its row was written."""
    stripe_id = str(obj["id"])
    report.checked += 1
    local = (
        await session.execute(
            select(*(getattr(Subscription, name) for name in _COMPARED)).where(
                Subscription.stripe_subscription_id == stripe_id
            )
        )
    ).one_or_none()
    remote = subscription_values(obj)
    changed = [
        Difference(stripe_id, name, None if local is None else getattr(local, name), remote[name])
        for name in _COMPARED
        if local is None or getattr(local, name) != remote[name]
    ]
    # An empty id sorts first: a webhook event created in the same second still wins.
    outcome = await apply_subscription(session, obj, EventRef(id="", type="sync", created=started))
    if outcome is Outcome.UNMATCHED:
        report.unmatched.append(stripe_id)
        return False
    if local is None:
        report.created.append(stripe_id)
    if changed and outcome is Outcome.PROCESSED:
        report.differences.extend(changed)
        report.updated += 1
    return outcome is Outcome.PROCESSED
