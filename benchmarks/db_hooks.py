"""CPU cost of the database timing hooks (`db.query_ms`), per statement.

`python -m benchmarks.db_hooks [DATABASE_URL]`: the two statement hooks alone, in a loop,
and `SELECT 1` through SQLAlchemy and asyncpg with and without them (CPU time of this
process, so a loaded host inflates both sides alike).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from sqlalchemy import event, text

from cortiware import metrics
from cortiware.db import engine as db_engine

LOOPS = 100_000
STATEMENTS = 3_000


class _Connection:
    info: dict[str, Any] = {}


def hooks_alone() -> float:
    """Microseconds per statement of `_query_started` + `_query_finished` (+ observe)."""
    conn = _Connection()
    start = time.perf_counter()
    for i in range(LOOPS):
        db_engine._query_started(conn)
        db_engine._query_finished(conn)
        if i % 100 == 0:
            metrics.drain_observations()
    return (time.perf_counter() - start) / LOOPS * 1e6


async def per_statement(url: str, *, hooks: bool) -> float:
    """CPU microseconds per `SELECT 1`."""
    engine = db_engine.create_engine(url, pool_size=1)
    if not hooks:
        event.remove(engine.sync_engine, "before_cursor_execute", db_engine._query_started)
        event.remove(engine.sync_engine, "after_cursor_execute", db_engine._query_finished)
    try:
        async with engine.connect() as conn:
            for _ in range(200):
                await conn.execute(text("SELECT 1"))
            start = time.process_time()
            for i in range(STATEMENTS):
                await conn.execute(text("SELECT 1"))
                if i % 100 == 0:
                    metrics.drain_observations()
            return (time.process_time() - start) / STATEMENTS * 1e6
    finally:
        await engine.dispose()


async def main(url: str) -> None:
    """Print the figures."""
    print(f"hooks alone: {hooks_alone():.2f} us per statement")
    for _ in range(3):
        off = await per_statement(url, hooks=False)
        on = await per_statement(url, hooks=True)
        print(f"SELECT 1 CPU per statement: without hooks {off:.0f} us, with {on:.0f} us")


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/postgres")
    )
