"""Static check: service code reads and writes `app.state` only through `StateKey`s."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

import cortiware

_PACKAGE: Final = Path(cortiware.__file__).parent
_ALLOWED: Final = frozenset({_PACKAGE / "app_state.py"})
_APP_NAMES: Final = frozenset({"app", "litestar_app", "application"})


def _is_app(node: ast.expr) -> bool:
    """`app`, `request.app`, `scope["litestar_app"]` and the like."""
    if isinstance(node, ast.Name):
        return node.id in _APP_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in _APP_NAMES
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and key.value in _APP_NAMES
    return False


def _is_app_state(node: ast.expr | None) -> bool:
    return (
        node is not None
        and isinstance(node, ast.Attribute)
        and node.attr == "state"
        and _is_app(node.value)
    )


def _annotation_is_state(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return annotation.value.split(".")[-1] == "State"
    if isinstance(annotation, ast.Name):
        return annotation.id == "State"
    return isinstance(annotation, ast.Attribute) and annotation.attr == "State"


def _state_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names in `function` that hold an app's `State`: `State` parameters and `x = app.state`."""
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    names = {a.arg for a in every if _annotation_is_state(a.annotation)}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and _is_app_state(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and (_annotation_is_state(node.annotation) or _is_app_state(node.value))
        ):
            names.add(node.target.id)
    return names


def untyped_state_uses(source: str) -> list[tuple[int, str]]:
    """(line, code) of each lookup in `source` that bypasses `StateKey`: an attribute,
    subscript or `in` test on `app.state` or on a name holding an app's `State`."""
    tree = ast.parse(source)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    state_names: set[str] = set()
    for function in functions:
        state_names |= _state_names(function)

    def holds_state(node: ast.expr) -> bool:
        return _is_app_state(node) or (isinstance(node, ast.Name) and node.id in state_names)

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        target: ast.expr | None = None
        if isinstance(node, ast.Attribute | ast.Subscript):
            target = node.value
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) for op in node.ops
        ):
            target = node.comparators[-1]
        if target is not None and holds_state(target):
            found.append((node.lineno, ast.unparse(node)))
    return sorted(set(found))


@pytest.mark.parametrize(
    "source",
    [
        "def f(request):\n    return request.app.state.get('settings')\n",
        "def f(app):\n    return app.state.settings\n",
        "def f(app):\n    app.state['kv'] = 1\n",
        "def f(state: State):\n    return state.get('stripe_client')\n",
        "def f(state: 'State'):\n    return state.settings\n",
        "def f(state: State):\n    return 'x' in state\n",
        "def f(app):\n    state = app.state\n    return state['db_engine']\n",
        "def f(scope):\n    return scope['litestar_app'].state.kv\n",
    ],
)
def test_the_scan_finds_untyped_lookups(source: str) -> None:
    """Each way of reading app state by name is reported by the scan."""
    assert untyped_state_uses(source)


@pytest.mark.parametrize(
    "source",
    [
        "def f(state: State):\n    return SETTINGS.get(state)\n",
        "def f(request):\n    return provide(session, request.app.state)\n",
        "def f(self):\n    return self.breaker.state.value\n",
        "def f(scope):\n    state = scope\n    state['principal'] = 1\n",
    ],
)
def test_the_scan_accepts_typed_access_and_other_states(source: str) -> None:
    """`StateKey` access, passing the whole `State` on, and unrelated `state`s are not reported."""
    assert untyped_state_uses(source) == []


def test_service_code_reads_app_state_only_through_state_keys() -> None:
    """No module of `cortiware` but `app_state.py` looks an app-state entry up by name."""
    offences = [
        f"{path.relative_to(_PACKAGE.parent)}:{line}: {code}"
        for path in sorted(_PACKAGE.rglob("*.py"))
        if path not in _ALLOWED
        for line, code in untyped_state_uses(path.read_text(encoding="utf-8"))
    ]
    assert not offences, (
        "untyped app-state lookups; declare a `StateKey` next to the value's type and use its "
        "get/find/set (or a `Provide` dependency) instead:\n" + "\n".join(offences)
    )
