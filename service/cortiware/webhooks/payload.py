"""Webhook bodies as PostgreSQL can store them: the JSON a sender may send but `jsonb` refuses.

`json.loads` accepts `NaN`, `Infinity` and numbers that overflow to infinity, which
PostgreSQL's json types reject, and recurses on nesting (`RecursionError`); `jsonb` cannot
hold U+0000 or a lone surrogate (`"\\ud800"`). A verified delivery is parsed here so that
each of these is either a clear `ValueError` (the route's 400) or, for NULs and lone
surrogates, replaced by U+FFFD, and never a 500 at the insert.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["NEEDS_CLEANING", "loads", "without_nul"]


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


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""U+0000 and lone surrogates (a valid pair is already one character): `jsonb` refuses both."""
NEEDS_CLEANING = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
"""A JSON escape in a raw body that may decode to something `without_nul` must replace."""


def without_nul(value: Any) -> Any:
    """`value` with every U+0000 and lone surrogate in its strings (keys too) replaced by
    U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value
