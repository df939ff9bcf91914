"""Owner passwords: the argon2id parameters, and argon2 work bounded per process.

**Parameters**: argon2id with m = 19 MiB, t = 2, p = 1, the first of the OWASP Password
Storage Cheat Sheet's equivalent argon2id configurations (its minimum). One verification
cost 28 ms of CPU on this repository's 2-vCPU machine (mean of 10, load average 6), against
242 ms for argon2-cffi's default (RFC 9106 low-memory: 64 MiB, t = 3, p = 4), which
100 onboarding users (an accept and a login each) could not get from two cores
(loadtests/README.md). Hashes made with other parameters still verify, and are re-hashed
with these at the owner's next login.

**Concurrency**: argon2 is memory-hard CPU work; run on the event loop it would stall
every request of the process, and run unbounded in threads it would starve the loop,
PostgreSQL connects and Redis replies of CPU (each 19 MiB too). `PasswordWork` runs it on
its own pool of one thread per CPU this process may use, never on the loop. Calls queue
for a thread; one that has waited `max_wait` seconds when its turn comes, or arrives
while `max_queued` are already waiting, is refused without hashing: `PasswordWorkBusy`, a
503 problem+json with `Retry-After` (counter `passwords.busy`). The queue therefore drains
at once when overloaded instead of piling up, and a caller waits at most about `max_wait`
plus one hash. The bound is per process: `cortiware serve --workers N` runs N pools.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Final, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cortiware import metrics
from cortiware.errors import ServiceUnavailable

__all__ = [
    "MAX_QUEUED_PER_THREAD",
    "MAX_WAIT_SECONDS",
    "PasswordWork",
    "PasswordWorkBusy",
    "hash_password",
    "password_hasher",
    "password_work",
    "verify_password",
]

T = TypeVar("T")

MEMORY_COST_KIB: Final = 19 * 1024
TIME_COST: Final = 2
PARALLELISM: Final = 1
MAX_WAIT_SECONDS: Final = 5.0
"""Longest a call waits for a hashing thread before it is refused (503), as long as a request
waits for a pooled database connection: a burst (every retried accept and login at once,
right after a database outage, on a loaded host) is served late rather than refused."""
MAX_QUEUED_PER_THREAD: Final = 64
"""Calls allowed to wait per hashing thread; beyond, refused at once (503)."""
RETRY_AFTER_SECONDS: Final = 1
_busy = metrics.counter("passwords.busy")


@lru_cache(maxsize=1)
def password_hasher() -> PasswordHasher:
    """The argon2id hasher for owner passwords (OWASP minimum: 19 MiB, t=2, p=1)."""
    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Same parameters as real hashes, so verifying against it costs the same.
    return password_hasher().hash("cortiware-dummy-password-for-timing")


class PasswordWorkBusy(ServiceUnavailable):
    """Too much password hashing queued in this process (503, `Retry-After`)."""

    def __init__(self) -> None:
        super().__init__(
            "Too many password checks are waiting; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class PasswordWork:
    """A bounded pool for argon2 calls (see the module docstring)."""

    __slots__ = ("_executor", "_lock", "_queued", "max_queued", "max_wait", "threads")

    def __init__(
        self,
        threads: int | None = None,
        *,
        max_wait: float = MAX_WAIT_SECONDS,
        max_queued: int | None = None,
    ) -> None:
        self.threads = threads or _cpus()
        self.max_wait = max_wait
        self.max_queued = (
            max_queued if max_queued is not None else (MAX_QUEUED_PER_THREAD * self.threads)
        )
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="argon2")
        self._lock = threading.Lock()
        self._queued = 0
        """Calls submitted and not yet started (their turn decides whether they run)."""

    @property
    def queued(self) -> int:
        """Calls waiting for a thread."""
        return self._queued

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on a hashing thread; raise `PasswordWorkBusy` when refused."""
        with self._lock:
            if self._queued >= self.max_queued:
                _busy.inc()
                raise PasswordWorkBusy
            self._queued += 1
        deadline = time.monotonic() + self.max_wait

        def turn() -> tuple[bool, T | None]:
            with self._lock:
                self._queued -= 1
            if time.monotonic() > deadline:
                return False, None  # waited too long: the caller has been answered 503
            return True, fn(*args)

        future = self._executor.submit(turn)
        try:
            ran, result = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancel():  # never started: it no longer waits
                with self._lock:
                    self._queued -= 1
            raise
        if not ran:
            _busy.inc()
            raise PasswordWorkBusy
        return result  # type: ignore[return-value]

    def shutdown(self) -> None:
        """Stop the threads once their current call is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)


password_work: Final = PasswordWork()
"""The process's pool (threads start on first use)."""


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (blocking: in a request, `password_work.run` it)."""
    return password_hasher().hash(password)


def _verify(stored: str | None, password: str) -> tuple[bool, str | None]:
    hasher = password_hasher()
    try:
        hasher.verify(stored if stored is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:  # pragma: no cover - only if someone chose the dummy password itself
        return False, None
    # Same thread, same turn: re-hash with today's parameters while the password is known.
    return True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None


async def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """Whether `password` matches the hash `stored` (None: an unknown user, verified against a
    dummy hash for the same cost), and a new hash when `stored` has outdated parameters."""
    return await password_work.run(_verify, stored, password)
