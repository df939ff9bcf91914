"""Where `cortiware audit prune --archive-to URL` writes rows before deleting them.

Rows are JSON lines, one object per audit entry. `file:///dir` appends every batch of a run
to `dir/audit-<UTC timestamp>.jsonl` (fsynced before the batch is deleted);
`s3://bucket/prefix` puts one object per batch, `prefix/audit-<timestamp>-<batch>.jsonl`,
and needs boto3 (not a dependency of the service: the image that runs the job installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cortiware.db.models import AuditEntry

__all__ = ["ArchiveError", "FileArchive", "S3Archive", "archive_for", "entry_to_json"]


class ArchiveError(Exception):
    """The archive URL is unusable; the message is one line for the operator."""


def entry_to_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as a JSON object (the archive line format)."""
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "role": entry.role,
        "organization_id": str(entry.organization_id) if entry.organization_id else None,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "action": entry.action,
        "changes": entry.changes,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "request_id": entry.request_id,
    }


def _lines(rows: Sequence[AuditEntry]) -> bytes:
    return b"".join(
        json.dumps(entry_to_json(r), separators=(",", ":"), sort_keys=True).encode() + b"\n"
        for r in rows
    )


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


class FileArchive:
    """Append batches to one JSON-lines file per run under a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"audit-{_stamp()}.jsonl"

    def check(self) -> None:
        """Create the directory; raise ArchiveError when it cannot be written."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot create {self.directory}: {exc.strerror}") from exc
        if not os.access(self.directory, os.W_OK):
            raise ArchiveError(f"cannot write to {self.directory}")

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    async def __call__(self, rows: Sequence[AuditEntry]) -> None:
        """Append `rows` and fsync, so they are on disk before they are deleted."""
        await asyncio.to_thread(self._append, _lines(rows))

    def __str__(self) -> str:
        return self.path.as_uri()


class S3Archive:
    """Put each batch as one S3 object under `s3://bucket/prefix`."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._run = _stamp()
        self._batch = 0

    def check(self) -> None:
        """Nothing to prepare: credentials are checked by the first upload."""

    async def __call__(self, rows: Sequence[AuditEntry]) -> None:
        """Upload `rows`; the batch is deleted only after S3 accepted it."""
        self._batch += 1
        key = f"{self.prefix}/audit-{self._run}-{self._batch:05d}.jsonl".lstrip("/")
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=_lines(rows),
            ContentType="application/x-ndjson",
        )

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def archive_for(url: str) -> FileArchive | S3Archive:
    """The archive for `file:///path` or `s3://bucket/prefix`; raise ArchiveError."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ArchiveError("--archive-to file URLs look like file:///absolute/directory")
        archive: FileArchive | S3Archive = FileArchive(Path(unquote(parts.path)))
    elif parts.scheme == "s3":
        if not parts.netloc:
            raise ArchiveError("--archive-to s3 URLs look like s3://bucket/prefix")
        try:
            # Only `--archive-to s3://` needs boto3, whose import alone takes about a quarter
            # of the CLI's start-up (`python -X importtime`): loaded on demand.
            import boto3  # noqa: PLC0415
        except ImportError:
            raise ArchiveError(
                "s3:// archiving needs boto3, which is not installed here "
                "(pip install boto3, or archive to file:///path)"
            ) from None
        archive = S3Archive(parts.netloc, unquote(parts.path), boto3.client("s3"))
    else:
        raise ArchiveError("--archive-to must be file:///path or s3://bucket/prefix")
    archive.check()
    return archive
