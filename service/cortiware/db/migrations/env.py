"""Alembic environment: runs on a connection handed in by `cortiware.db.migrate`."""

from __future__ import annotations

from alembic import context

from cortiware.db import models  # noqa: F401 - registers every table on the metadata
from cortiware.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via cortiware.db.migrate
    raise RuntimeError("run migrations with `cortiware migrate`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
