"""Webhook bodies as PostgreSQL can store them: the JSON a sender may send but `jsonb` refuses.

`json.loads` accepts `NaN`, `Infinity` and numbers that overflow to infinity, which
PostgreSQL's json types reject, and recurses on nesting (`RecursionError`); `jsonb` cannot
hold U+0000. A verified delivery is parsed here so that each of these is either a clear
`ValueError` (the route's 400) or, for NULs, replaced, and never a 500 at the insert.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["loads", "without_nul"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number PostgreSQL can store")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number overflows")
    return value


def loads(body: bytes) -> Any:
    """The JSON value of `body`; raise ValueError for anything PostgreSQL's json refuses
    (except NUL characters: see `without_nul`) and for nesting too deep to decode."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def without_nul(value: Any) -> Any:
    """`value` with every U+0000 in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value
