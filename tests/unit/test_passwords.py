"""argon2id parameters and the bounded hashing pool (`cortiware.auth.passwords`)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type

from cortiware import metrics
from cortiware.auth.passwords import (
    PasswordWork,
    PasswordWorkBusy,
    hash_password,
    password_hasher,
    verify_password,
)


def test_hashes_use_at_least_the_owasp_minimum() -> None:
    """argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's minimum), in the stored hash itself."""
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    hasher = password_hasher()
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= 19 * 1024
    assert hasher.time_cost >= 2


async def test_an_outdated_hash_verifies_and_is_rehashed_with_todays_parameters() -> None:
    """A hash made with argon2-cffi's defaults (the former parameters) still logs in, and the
    verification returns its replacement; a current hash returns none."""
    old = PasswordHasher().hash("correct horse battery staple")  # 64 MiB, t=3, p=4
    matched, rehashed = await verify_password(old, "correct horse battery staple")
    assert matched
    assert rehashed is not None
    assert rehashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    current = hash_password("correct horse battery staple")
    assert await verify_password(current, "correct horse battery staple") == (True, None)
    assert await verify_password(current, "wrong") == (False, None)
    assert await verify_password(None, "anything") == (False, None)  # the dummy hash


async def test_no_more_calls_run_at_once_than_the_pool_has_threads() -> None:
    """Twenty concurrent calls on a two-thread pool: never more than two at a time."""
    work = PasswordWork(2, max_wait=10.0)
    running = 0
    peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    try:
        await asyncio.gather(*(work.run(job) for _ in range(20)))
    finally:
        work.shutdown()
    assert peak == 2
    assert work.queued == 0


async def test_the_event_loop_keeps_running_while_argon2_does() -> None:
    """Verifications run on the pool's threads: the loop keeps ticking meanwhile."""
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    beating = asyncio.create_task(heartbeat())
    stored = hash_password("correct horse battery staple")
    for _ in range(3):
        assert (await verify_password(stored, "correct horse battery staple"))[0]
    stop.set()
    await beating
    assert ticks >= 10


async def test_a_call_that_waited_too_long_is_refused_without_running() -> None:
    """One thread busy for 0.5 s, a wait bound of 0.1 s: the next call is a 503 with
    `Retry-After`, and its work never runs (the queue drains instead of piling up)."""
    work = PasswordWork(1, max_wait=0.1)
    ran: list[str] = []
    busy_before = metrics.counter("passwords.busy").value
    try:
        first = asyncio.ensure_future(work.run(lambda: (time.sleep(0.5), ran.append("first"))))
        await asyncio.sleep(0.05)
        with pytest.raises(PasswordWorkBusy) as refused:
            await work.run(lambda: ran.append("second"))
        await first
    finally:
        work.shutdown()
    assert ran == ["first"]
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert metrics.counter("passwords.busy").value == busy_before + 1
    assert work.queued == 0


async def test_a_full_queue_refuses_at_once() -> None:
    """With `max_queued` calls waiting, the next is refused before it is queued."""
    work = PasswordWork(1, max_wait=5.0, max_queued=1)
    release = threading.Event()
    try:
        running = asyncio.ensure_future(work.run(release.wait))
        await asyncio.sleep(0.05)  # started: no longer queued
        waiting = asyncio.ensure_future(work.run(lambda: None))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(PasswordWorkBusy):
            await work.run(lambda: None)
        assert time.monotonic() - started < 0.05
        release.set()
        await asyncio.gather(running, waiting)
    finally:
        release.set()
        work.shutdown()
    assert work.queued == 0


async def test_a_cancelled_call_no_longer_counts_as_queued() -> None:
    """A caller that goes away (client disconnect) frees its place in the queue."""
    work = PasswordWork(1, max_wait=5.0)
    release = threading.Event()
    try:
        running = asyncio.ensure_future(work.run(release.wait))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(work.run(lambda: None))
        await asyncio.sleep(0.05)
        assert work.queued == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert work.queued == 0
        release.set()
        await running
    finally:
        release.set()
        work.shutdown()
