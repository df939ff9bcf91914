"""A pytest plugin naming the test and code that created each event loop left unclosed.

Off by default. `unclosed event loop` ResourceWarnings fail the run (warnings are errors),
but arrive when the garbage collector finds the loop, often tests later; this says where
the loop was made, at a fraction of `PYTHONTRACEMALLOC`'s cost::

    PYTHONPATH=. .venv/bin/pytest tests/integration -p tests.support.loop_leaks
    # each leak: LOOP_LEAKS_FILE (default loop-leaks.txt), creating test and stack
"""

from __future__ import annotations

import asyncio.base_events
import os
import traceback
from pathlib import Path
from typing import Any

_Loop = asyncio.base_events.BaseEventLoop
_init = _Loop.__init__
_finalize = _Loop.__del__
_REPORT = Path(os.environ.get("LOOP_LEAKS_FILE", "loop-leaks.txt"))


def _tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _init(self, *args, **kwargs)
    self._created_by = os.environ.get("PYTEST_CURRENT_TEST", "(outside any test)")
    self._created_at = "".join(traceback.format_stack(limit=30)[:-1])


def _tracked_del(self: Any, *args: Any, **kwargs: Any) -> None:
    if not self.is_closed():
        with _REPORT.open("a") as report:
            report.write(f"\n=== {self!r} created during {getattr(self, '_created_by', '?')}\n")
            report.write(getattr(self, "_created_at", "(created before the plugin loaded)\n"))
    _finalize(self, *args, **kwargs)


_Loop.__init__ = _tracked_init  # type: ignore[method-assign]
_Loop.__del__ = _tracked_del  # type: ignore[method-assign]
