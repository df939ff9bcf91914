"""The input guard's scanners: JSON depth outside strings, and real `\\u0000` escapes only."""

from __future__ import annotations

import pytest

from cortiware.middleware.input_guard import _body_problem, json_depth_exceeds


def test_depth_counts_only_brackets_outside_strings() -> None:
    assert not json_depth_exceeds(b'{"a": "' + b"[" * 100 + b'"}', limit=3)
    assert not json_depth_exceeds(b'{"a": "\\"' + b"[" * 100 + b'"}', limit=3)
    assert json_depth_exceeds(b'{"a": [[[1]]]}', limit=3)
    assert not json_depth_exceeds(b'{"a": [[1]], "b": [[2]], "c": [[3]]}', limit=3)


@pytest.mark.parametrize(
    ("body", "nul"),
    [
        (b'{"a": "x\\u0000"}', True),
        (b'{"a": "x\\\\\\u0000"}', True),  # escaped backslash, then the escape
        (b'{"a": "x\\\\u0000"}', False),  # the text backslash-u-0-0-0-0
        (b'{"a": "x\x00"}', True),
        (b'{"a": "x\\u00001"}', True),
        (b'{"a": "x\\u0001"}', False),
    ],
)
def test_nul_escapes_are_told_from_text(body: bytes, nul: bool) -> None:
    problem = _body_problem(body)
    assert (problem is not None and "NUL" in problem) is nul
