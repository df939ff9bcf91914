"""Product activity: onboarding funnel events as `Activity` rows, each also counted.

Funnel actions: `invite_created`, `invite_verified`, `invite_accepted` and `invite_failed`
(details carry the `stage` and `reason`). The counter `activity.<action>` (and
`activity.invite_failed.<reason>`) goes to the metrics publisher.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.db.models import Activity

__all__ = [
    "INVITE_ACCEPTED",
    "INVITE_CREATED",
    "INVITE_FAILED",
    "INVITE_VERIFIED",
    "record_activity",
    "record_activity_now",
]

INVITE_CREATED: Final = "invite_created"
INVITE_VERIFIED: Final = "invite_verified"
INVITE_ACCEPTED: Final = "invite_accepted"
INVITE_FAILED: Final = "invite_failed"


def _count(action: str, details: Mapping[str, Any]) -> None:
    metrics.counter(f"activity.{action}").inc()
    reason = details.get("reason")
    if isinstance(reason, str):
        metrics.counter(f"activity.{action}.{reason}").inc()


def record_activity(
    session: AsyncSession,
    action: str,
    *,
    organization_id: uuid.UUID | None = None,
    subject: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Activity:
    """Add an activity row to `session` (committed with it) and count it."""
    row = Activity(
        action=action,
        organization_id=organization_id,
        subject=subject[:320] if subject else None,
        details=dict(details or {}),
    )
    session.add(row)
    _count(action, row.details)
    return row


async def record_activity_now(
    sessionmaker: async_sessionmaker[AsyncSession],
    action: str,
    *,
    organization_id: uuid.UUID | None = None,
    subject: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record an activity in its own transaction: for failures whose request rolls back."""
    async with sessionmaker() as session, session.begin():
        record_activity(
            session, action, organization_id=organization_id, subject=subject, details=details
        )
