"""Audit recorder helpers, cursors and archive URLs, without a database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cortiware.audit.archive import ArchiveError, FileArchive, archive_for
from cortiware.audit.query import Cursor
from cortiware.audit.recorder import REDACTED, Actor, _changes, redact
from cortiware.auth import Principal, Role
from cortiware.db.models import AuditEntry
from cortiware.errors import BadRequest


def test_secret_looking_keys_are_redacted_at_any_depth() -> None:
    """Passwords, tokens, hashes, secrets and keys are replaced; other values kept JSON-safe."""
    org = uuid.uuid4()
    doc = {
        "password": "p",
        "token_hash": "h",
        "nested": {"client_secret": "s", "api_key": "k", "name": "ok"},
        "items": [{"authorization": "Bearer x"}],
        "organization_id": org,
        "at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert redact(doc) == {
        "password": REDACTED,
        "token_hash": REDACTED,
        "nested": {"client_secret": REDACTED, "api_key": REDACTED, "name": "ok"},
        "items": [{"authorization": REDACTED}],
        "organization_id": str(org),
        "at": "2026-01-01T00:00:00+00:00",
    }


def test_update_keeps_only_changed_fields() -> None:
    """An update records only the fields that differ; a create keeps every field."""
    assert _changes({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {
        "before": {"b": 2},
        "after": {"b": 3},
    }
    assert _changes(None, {"a": 1}) == {"before": None, "after": {"a": 1}}


def test_actor_of_principal() -> None:
    """A principal becomes an actor with its username and role."""
    actor = Actor.of(Principal(role=Role.PROVIDER, username="pat"))
    assert actor == Actor(name="pat", role="provider")


def test_cursor_round_trip_and_rejects_garbage() -> None:
    """A cursor decodes to what was encoded; anything else is 400."""
    cursor = Cursor(created_at=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), id=42)
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "garbage", "W10", "WyIyMDI2LTA1LTAxIiwgMV0"):
        with pytest.raises(BadRequest):
            Cursor.decode(bad)


def test_archive_urls(tmp_path: Path) -> None:
    """file:// makes a directory archive; other schemes and s3 without boto3 are one-line errors."""
    archive = archive_for((tmp_path / "a" / "b").as_uri())
    assert isinstance(archive, FileArchive)
    assert (tmp_path / "a" / "b").is_dir()
    for url in ("ftp://x/y", "file://host/path", "s3://"):
        with pytest.raises(ArchiveError):
            archive_for(url)
    try:
        import boto3  # type: ignore[import-not-found]  # noqa: F401 - optional
    except ImportError:
        with pytest.raises(ArchiveError, match="boto3"):
            archive_for("s3://bucket/prefix")


async def test_file_archive_appends_json_lines(tmp_path: Path) -> None:
    """Each batch is appended as one JSON object per line."""
    archive = FileArchive(tmp_path)
    entry = AuditEntry(
        id=7,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        actor="system",
        role="system",
        entity="plan",
        entity_id="x",
        action="delete",
        changes={"before": {"code": "x"}, "after": None},
    )
    await archive([entry])
    await archive([entry])
    lines = archive.path.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["id"] == 7
    assert json.loads(lines[0])["changes"]["before"] == {"code": "x"}
