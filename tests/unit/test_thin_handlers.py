"""Route and page handler modules stay thin: the domain services own SQL and transactions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service" / "cortiware"
HANDLER_MODULES = sorted(
    [
        *(PACKAGE / domain / "routes.py" for domain in (
            "onboarding", "monetization", "organizations", "billing", "webhooks", "audit"
        )),
        *(PACKAGE / "portals" / f"{name}.py" for name in ("owner", "accountant", "developer")),
        *(PACKAGE / "pages").glob("*.py"),
    ]
)  # fmt: skip
# What a handler may take from SQLAlchemy: the type of the session it hands to a service.
ALLOWED_SQLALCHEMY = frozenset({"AsyncSession"})
# Session calls that query or write: they belong in a service.
SESSION_CALLS = frozenset(
    {"add", "add_all", "begin", "commit", "delete", "execute", "flush", "rollback", "scalar",
     "scalars"}
)  # fmt: skip


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_handler_module_imports_only_the_session_type(path: Path) -> None:
    """A handler module imports nothing from SQLAlchemy but `AsyncSession`."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("sqlalchemy") for a in node.names), node.lineno
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names = {a.name for a in node.names}
            assert names <= ALLOWED_SQLALCHEMY, (node.lineno, names - ALLOWED_SQLALCHEMY)


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_handler_module_runs_no_query_and_owns_no_transaction(path: Path) -> None:
    """No handler module calls a session's query, write or transaction methods."""
    tree = ast.parse(path.read_text())
    calls = [
        (node.lineno, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SESSION_CALLS
        and isinstance(node.func.value, ast.Name)
        and "session" in node.func.value.id
    ]
    assert calls == []
