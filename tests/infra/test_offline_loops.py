"""The offline run (Pulumi under mocks) closes every event loop it opens but its own."""

from __future__ import annotations

import asyncio
import gc

from infra import offline


def _open_loops() -> list[asyncio.AbstractEventLoop]:
    gc.collect()
    loops = (o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop))
    return [loop for loop in loops if not loop.is_closed()]


def test_a_mocked_run_leaves_no_event_loop_open() -> None:
    """After a stack's run, no loop it made is left open: Pulumi's mock `Invoke` gives each
    executor thread a loop it never closes, which would reach the garbage collector as an
    `unclosed event loop` ResourceWarning (an error here) at some later test."""
    before = {id(loop) for loop in _open_loops()}
    offline.run_offline("staging")
    leaked = [
        loop
        for loop in _open_loops()
        if id(loop) not in before and loop is not offline._OWN_LOOP  # closed at session end
    ]
    assert leaked == []
