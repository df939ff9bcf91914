"""The audit log: one row per mutation, written in the mutation's own transaction.

`record(...)` is what every mutating handler calls; `routes` serves the query and retention
API; `retention.prune` and `cli` implement `cortiware audit prune`.
"""

from cortiware.audit.recorder import (
    SYSTEM,
    Actor,
    insert,
    insert_many,
    record,
    redact,
    row,
    snapshot,
)

__all__ = ["SYSTEM", "Actor", "insert", "insert_many", "record", "redact", "row", "snapshot"]
