"""The audit log on PostgreSQL: query filters, keyset pagination, retention, prune, archive."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.audit.archive import archive_for
from cortiware.audit.retention import prune
from cortiware.cli import main
from cortiware.db.engine import create_engine
from cortiware.db.models import AuditEntry
from tests.conftest import TEST_ENV
from tests.support.auth import login_staff


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database for the test's own loop (the app runs on another)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _add(
    db: async_sessionmaker[AsyncSession], entity: str, count: int, *, age: timedelta
) -> None:
    start = datetime.now(UTC) - age
    async with db() as session, session.begin():
        for n in range(count):
            session.add(
                AuditEntry(
                    created_at=start + timedelta(microseconds=n),
                    actor="system",
                    role="system",
                    entity=entity,
                    entity_id=str(n),
                    action="update",
                    changes={"before": {"n": n}, "after": {"n": n + 1}},
                )
            )


async def test_query_filters_and_keyset_pages(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """Pages of `limit` rows, newest first, cover every matching row exactly once."""
    entity = f"thing-{uuid.uuid4().hex[:6]}"
    await _add(db, entity, 7, age=timedelta(minutes=5))
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"entity": entity, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/provider/audit", params=params)).json()
        seen += [int(item["entity_id"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0]

    since = (datetime.now(UTC) - timedelta(minutes=6)).isoformat()
    filtered = await client.get(
        "/api/provider/audit", params={"entity": entity, "action": "create", "since": since}
    )
    assert filtered.json() == {"items": [], "next_cursor": None}
    until = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    old = await client.get("/api/provider/audit", params={"entity": entity, "until": until})
    assert old.json()["items"] == []
    for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "garbage"}, {"since": "yesterday"}):
        response = await client.get("/api/provider/audit", params=bad)
        assert response.status_code == 400, bad
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_retention_round_trip_is_audited(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession]
) -> None:
    """PUT retention stores 1-3650 days (else 400) and writes an audit row of the change."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    for days in (0, 3651):
        put = await client.put("/api/provider/audit/retention", json={"days": days})
        assert put.status_code == 400
    assert (await client.put("/api/provider/audit/retention", json={"days": 45})).json() == {
        "days": 45
    }
    assert (await client.get("/api/provider/audit/retention")).json() == {"days": 45}
    rows = await client.get("/api/provider/audit", params={"entity": "audit_retention"})
    newest = rows.json()["items"][0]
    assert newest["changes"]["after"] == {"days": 45}
    assert newest["actor"] == "provider"
    assert newest["role"] == "provider"
    assert newest["request_id"]
    assert newest["user_agent"] == "testclient"
    await client.put("/api/provider/audit/retention", json={"days": 90})


async def test_changed_retention_shows_in_the_cached_global_config(
    client: AsyncTestClient[Litestar],
) -> None:
    """Setting the retention to 123 days reads back 123 from the (cached) global config."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    before = (await client.get("/api/provider/audit/retention")).json()["days"]
    config = await client.get("/api/provider/monetization/config")  # now cached
    assert config.json()["audit_retention_days"] == before
    try:
        put = await client.put("/api/provider/audit/retention", json={"days": 123})
        assert put.status_code == 200
        config = await client.get("/api/provider/monetization/config")
        assert config.json()["audit_retention_days"] == 123
    finally:
        await client.put("/api/provider/audit/retention", json={"days": before})


async def test_prune_archives_then_deletes_in_batches(
    db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Rows past retention go to the file archive as JSON lines, then are deleted; newer stay."""
    entity = f"prune-{uuid.uuid4().hex[:6]}"
    await _add(db, entity, 5, age=timedelta(days=400))
    await _add(db, entity, 2, age=timedelta(days=1))
    dry = await prune(db, days=365, dry_run=True)
    assert dry.matched >= 5
    assert dry.deleted == 0
    archive = archive_for((tmp_path / "archive").as_uri())
    result = await prune(db, days=365, archive=archive, batch_size=2)
    assert result.deleted >= 5
    assert result.batches >= 3
    lines = [json.loads(line) for line in archive.path.read_text().splitlines()]
    assert len(lines) == result.deleted
    assert sum(1 for line in lines if line["entity"] == entity) == 5
    async with db() as session:
        left = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == entity)
        )
    assert left == 2


def test_prune_command(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cortiware audit prune` reports a dry run, prunes with a file archive, refuses bad URLs."""
    for key, value in {**TEST_ENV, "DATABASE_URL": database_url}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    dry = runner.invoke(main, ["audit", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("dry run: ")
    url = (tmp_path / "out").as_uri()
    real = runner.invoke(main, ["audit", "prune", "--archive-to", url])
    assert real.exit_code == 0, real.output
    assert "archived to file://" in real.output
    bad = runner.invoke(main, ["audit", "prune", "--archive-to", "ftp://host/x"])
    assert bad.exit_code == 1
    assert "file:///path or s3://bucket/prefix" in bad.output
