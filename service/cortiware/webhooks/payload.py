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

__all__ = ["loads"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number PostgreSQL can store")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number overflows")
    return value


def loads(body: bytes) -> tuple[Any, bool]:
    """The JSON value of `body` as PostgreSQL can store it, and whether it had to be cleaned
    (every U+0000 and lone surrogate replaced by U+FFFD: the body as received then cannot be
    stored as is). Raise ValueError for anything else PostgreSQL's json refuses and for
    nesting too deep to decode."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    if not _UNSTORABLE_ESCAPE.search(body):  # the usual case: nothing to walk
        return value, False
    return _cleaned(value), True


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""U+0000 and lone surrogates (a valid pair is already one character): `jsonb` refuses both."""
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
"""A JSON escape that may decode to one of them (JSON forbids them unescaped)."""


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    if isinstance(value, dict):
        return {_cleaned(k): _cleaned(v) for k, v in value.items()}
    return value
