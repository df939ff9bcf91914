"""`record(...)`: add an `AuditEntry` to the caller's session, secrets redacted.

The row is added to the same session (so the same transaction) as the change it describes:
it commits with the change or rolls back with it, never one without the other. `insert(...)`
writes the same row at once with one textual INSERT (no ORM unit of work), for hot paths
that do not need the `AuditEntry` object.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from litestar.connection import ASGIConnection
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.auth import Principal
from cortiware.db.base import utcnow
from cortiware.db.models import AuditEntry
from cortiware.middleware.client_ip import client_ip
from cortiware.scope import request_id_of

__all__ = [
    "REDACTED",
    "SYSTEM",
    "Actor",
    "insert",
    "insert_many",
    "record",
    "redact",
    "row",
    "snapshot",
]

REDACTED: Final = "[redacted]"
# Keys whose values are never stored, wherever they appear in before/after documents.
_SECRET_KEY: Final = re.compile(
    r"(password|passwd|secret|token|authorization|cookie|credential|api_?key|private_?key"
    r"|signature|(^|_)hash$|dsn)",
    re.IGNORECASE,
)
_USER_AGENT_MAX: Final = 512


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, when it is not (yet) a logged-in `Principal`."""

    name: str
    """The actor's name as shown in the log (username, email or `system`)."""
    role: str
    """`provider`, `owner`, …, `invitee` for onboarding, `system` for jobs and webhooks."""

    @classmethod
    def of(cls, who: Principal | Actor) -> Actor:
        """The actor for a principal (or the actor itself)."""
        if isinstance(who, Actor):
            return who
        return cls(name=who.username, role=who.role.value)


SYSTEM: Final = Actor(name="system", role="system")
"""The actor of CLI jobs, webhooks and other changes no person made."""


def _jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON-able kind
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        return [_jsonable(v) for v in value]
    return str(value)


def redact(document: Any) -> Any:
    """`document` made JSON-safe, with the value of every secret-looking key replaced."""
    if isinstance(document, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else redact(v)
            for k, v in document.items()
        }
    if isinstance(document, list | tuple):
        return [redact(v) for v in document]
    return _jsonable(document)


def snapshot(instance: Any, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The column values of an ORM instance as a dict (for `before`/`after`)."""
    skipped = set(exclude)
    mapper = inspect(type(instance))
    return {
        attr.key: getattr(instance, attr.key)
        for attr in mapper.column_attrs
        if attr.key not in skipped
    }


def _changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    old = redact(dict(before)) if before is not None else None
    new = redact(dict(after)) if after is not None else None
    if old is not None and new is not None:
        # An update: keep only the fields that changed.
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        old = {k: old.get(k) for k in keys}
        new = {k: new.get(k) for k in keys}
    return {"before": old, "after": new}


def _header(connection: ASGIConnection[Any, Any, Any, Any], name: str) -> str | None:
    value = connection.headers.get(name)
    return value[:_USER_AGENT_MAX] if value else None


async def record(
    session: AsyncSession,
    *,
    actor: Principal | Actor,
    entity: str,
    entity_id: object | None,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    organization_id: uuid.UUID | None = None,
    request: ASGIConnection[Any, Any, Any, Any] | None = None,
) -> AuditEntry:
    """Add one audit row for a change to `session` (committed with the change).

    `before`/`after` are the entity's fields before and after (None for a create or a
    delete); an update keeps only the fields that differ. Secret-looking keys are redacted.
    The organization defaults to the principal's; IP, user agent and request id come from
    `request` when given.
    """
    who = Actor.of(actor)
    if organization_id is None and isinstance(actor, Principal):
        organization_id = actor.organization_id
    ip = user_agent = request_id = None
    if request is not None:
        settings = SETTINGS.find(request.app)
        proxies = settings.trusted_proxies if settings is not None else ()
        ip = client_ip(request.scope, proxies)[:64]
        user_agent = _header(request, "user-agent")
        raw_id = request_id_of(request.scope)
        request_id = raw_id[:64] if raw_id else None
    entry = AuditEntry(
        actor=who.name[:320],
        role=who.role[:32],
        organization_id=organization_id,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id)[:255],
        action=action,
        changes=_changes(before, after),
        ip=ip,
        user_agent=user_agent,
        request_id=request_id,
    )
    session.add(entry)
    return entry


# Textual so that executing it needs no per-call cache key or compilation; the column types
# bind `changes` as JSON(B) and `created_at` as a timestamp, as the ORM would.
_INSERT: Final = text(
    "INSERT INTO audit_log (created_at, actor, role, organization_id, entity, entity_id,"
    " action, changes, ip, user_agent, request_id) VALUES (:created_at, :actor, :role,"
    " :organization_id, :entity, :entity_id, :action, :changes, NULL, NULL, :request_id)"
).bindparams(
    bindparam("created_at", type_=AuditEntry.__table__.c.created_at.type),
    bindparam("organization_id", type_=AuditEntry.__table__.c.organization_id.type),
    bindparam("changes", type_=AuditEntry.__table__.c.changes.type),
)


async def insert(
    session: AsyncSession,
    *,
    actor: Principal | Actor,
    entity: str,
    entity_id: object | None,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    organization_id: uuid.UUID | None = None,
    request_id: str | None = None,
) -> None:
    """Write the row `record(...)` would (without IP and user agent), executed now in the
    session's transaction: it commits or rolls back with the change all the same."""
    await session.execute(
        _INSERT,
        row(
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=action,
            before=before,
            after=after,
            organization_id=organization_id,
            request_id=request_id,
        ),
    )


def row(
    *,
    actor: Principal | Actor,
    entity: str,
    entity_id: object | None,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    organization_id: uuid.UUID | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The parameters of one `insert` row, for `insert_many`."""
    who = Actor.of(actor)
    if organization_id is None and isinstance(actor, Principal):
        organization_id = actor.organization_id
    return {
        "created_at": utcnow(),
        "actor": who.name[:320],
        "role": who.role[:32],
        "organization_id": organization_id,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id)[:255],
        "action": action,
        "changes": _changes(before, after),
        "request_id": request_id[:64] if request_id else None,
    }


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write several `row(...)`s in one executemany (pipelined: one round trip on asyncpg)."""
    if rows:
        await session.execute(_INSERT, list(rows))
