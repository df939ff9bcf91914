"""Group commit for Stripe deliveries: concurrent deliveries share one transaction.

Each delivery waits for the commit of the batch that holds it, so it is answered 200 only
once its event is durably stored and applied, exactly as with a transaction per event. What
is shared is the fixed cost: `BEGIN`, `COMMIT` (one WAL flush) and one statement per step
for the whole batch (`stripe_events.receive_many`) instead of several round trips per event.
On a 2-vCPU host a PostgreSQL round trip costs about 0.5 ms, which capped a transaction per
event at about 150 events/s (docs/benchmarks.md).

A batch is whatever arrived while the previous batch was in flight (up to `max_batch`), so
a lone delivery is never delayed waiting for company. When anything in a batch raises, the
batch is rolled back and its events are processed one by one with `stripe_events.receive`,
each in its own transaction: a poison event then fails alone (stored as failed, answered
500) and the rest succeed. On SQLite (the embedded default) every event has its own
transaction, as SQLite has one writer anyway.

Hand-written: no library offers request coalescing over an SQLAlchemy session.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware import metrics
from cortiware.app_state import StateKey
from cortiware.webhooks import stripe_events
from cortiware.webhooks.store import IncomingEvent
from cortiware.webhooks.stripe_events import ProcessingFailed, Receipt

__all__ = ["INGEST_STATE_KEY", "STRIPE_INGEST", "StripeIngest"]

INGEST_STATE_KEY: Final = "stripe_ingest"
"""The name of `STRIPE_INGEST`."""

_log = structlog.get_logger(__name__)
_batches = metrics.counter("webhooks.stripe.batches")
_fallbacks = metrics.counter("webhooks.stripe.batch_fallbacks")

_Pending = tuple[IncomingEvent, "asyncio.Future[Receipt]"]


class StripeIngest:
    """Queue deliveries; one worker per process commits them in batches."""

    __slots__ = ("_after_commit", "_batching", "_queue", "_sessionmaker", "_worker", "max_batch")

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_batch: int = 64,
        after_commit: Callable[[list[Receipt]], Awaitable[None]] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.max_batch = max_batch
        self._after_commit = after_commit
        bind = sessionmaker.kw.get("bind")
        self._batching = bind is not None and bind.dialect.name == "postgresql"
        self._queue: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, event: IncomingEvent) -> Receipt:
        """Store and process `event`; return once committed.

        Raises:
            ProcessingFailed: processing raised; the event is stored as failed.
        """
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        if self._worker is None or self._worker.done():
            # A fresh context: the worker serves many requests, not the one that woke it.
            self._worker = asyncio.get_running_loop().create_task(
                self._drain(), context=contextvars.Context()
            )
        # Shielded: a client that hangs up does not cancel the batch others wait on.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                if self._batching and len(batch) > 1:
                    await self._run_batch(batch)
                else:
                    for pending in batch:
                        await self._run_one(pending)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    raise

    async def _run_batch(self, batch: list[_Pending]) -> None:
        events = [event for event, _ in batch]
        try:
            async with self._sessionmaker() as session:
                receipts = await stripe_events.receive_many(session, events)
                await session.commit()
        except Exception as exc:
            _fallbacks.inc()
            _log.warning("stripe batch failed; processing its events one by one", error=repr(exc))
            for pending in batch:
                await self._run_one(pending)
            return
        _batches.inc()
        await self._committed(receipts)
        for (_, future), receipt in zip(batch, receipts, strict=True):
            if not future.done():
                future.set_result(receipt)

    async def _run_one(self, pending: _Pending) -> None:
        """One event in its own transaction; whatever happens touches only its future."""
        event, future = pending
        try:
            async with self._sessionmaker() as session:
                try:
                    receipt = await stripe_events.receive(session, event)
                except ProcessingFailed as exc:
                    await session.commit()  # the event stored as failed, for retry and replay
                    if not future.done():
                        future.set_exception(exc)
                    return
                await session.commit()
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        await self._committed([receipt])
        if not future.done():
            future.set_result(receipt)

    async def _committed(self, receipts: list[Receipt]) -> None:
        if self._after_commit is not None:
            try:
                await self._after_commit(receipts)
            except Exception as exc:
                _log.warning("stripe after-commit hook failed", error=repr(exc))


STRIPE_INGEST: Final = StateKey(INGEST_STATE_KEY, StripeIngest)
"""`app.state` entry of the app's `StripeIngest`, made on first use."""
