"""Stripe webhook ingest, events per second: signature check (SDK, two secrets) + store-once
+ subscription sync, on PostgreSQL.

    .venv/bin/python -m benchmarks.webhooks [--events 4000] [--concurrency 32] [--workers 2]

Creates a scratch database on the PostgreSQL server of CORTIWARE_BENCH_DATABASE_URL
(default postgresql://postgres@127.0.0.1:5432/postgres), migrates it, and drops it at the
end. Each event is a `customer.subscription.updated` for one of 200 subscriptions, signed
with the second of two configured secrets (the slow path: the first is tried and fails).
Three ways in, each with fresh events:

- pipeline: `verify_signature` + `parse_event` + `StripeIngest.submit` (the endpoint's
  group commit), no HTTP;
- asgi: POSTs through the whole ASGI app in this process (middleware, routing, DI);
- http: POSTs over TCP to `cortiware serve --workers N` (uvicorn) started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import stripe

ADMIN_URL = os.environ.get(
    "CORTIWARE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRETS = ("whsec_bench_primary", "whsec_bench_secondary")
SUBSCRIPTIONS = 200


@dataclass
class Result:
    """One run: deliveries and wall-clock seconds."""

    name: str
    events: int
    seconds: float
    statuses: dict[str, int]

    @property
    def per_second(self) -> float:
        """Events per second."""
        return self.events / self.seconds


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new database on the admin server, dropped afterwards (even on failure)."""
    import psycopg

    name = f"cortiware_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(database_url: str) -> dict[str, str]:
    """The service's environment for the run (test mode, in-memory stores)."""
    from tests.conftest import TEST_ENV

    env = dict(TEST_ENV)
    env.update(DATABASE_URL=database_url, STRIPE_WEBHOOK_SECRET=",".join(SECRETS))
    env.pop("REDIS_URL", None)
    return env


async def prepare(database_url: str) -> list[tuple[str, str]]:
    """Migrate; create one organization per subscription; return (subscription, customer)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from cortiware.db import migrate
    from cortiware.db.engine import create_engine
    from cortiware.db.models import Organization

    await migrate.upgrade(database_url)
    engine = create_engine(database_url, pool_size=1)
    pairs = [(f"sub_bench{i:04d}", f"cus_bench{i:04d}") for i in range(SUBSCRIPTIONS)]
    async with AsyncSession(engine) as session, session.begin():
        session.add_all(Organization(name=f"Org {c}", stripe_customer_id=c) for _, c in pairs)
    await engine.dispose()
    return pairs


class EventMaker:
    """Signed `customer.subscription.updated` bodies with increasing creation times."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.clock = 1_770_000_000
        self.rng = random.Random(5)

    def make(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        """`count` fresh events, each with the headers that sign it."""
        out = []
        for _ in range(count):
            self.clock += 1
            sub, customer = self.rng.choice(self.pairs)
            body = json.dumps(
                {
                    "id": f"evt_{uuid.uuid4().hex[:24]}",
                    "object": "event",
                    "created": self.clock,
                    "type": "customer.subscription.updated",
                    "data": {"object": _subscription(sub, customer, self.rng, self.clock)},
                }
            )
            header = stripe.WebhookSignature.generate_signature_header(body, SECRETS[1])
            out.append(
                (body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"})
            )
        return out


def _subscription(sub: str, customer: str, rng: random.Random, now: int) -> dict[str, Any]:
    return {
        "id": sub,
        "object": "subscription",
        "customer": customer,
        "status": rng.choice(("active", "past_due", "trialing")),
        "cancel_at_period_end": rng.random() < 0.2,
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub[4:]}",
                    "current_period_start": now,
                    "current_period_end": now + 2_592_000,
                    "price": {
                        "id": rng.choice(("price_basic", "price_pro")),
                        "unit_amount": 1900,
                        "currency": "usd",
                        "recurring": {"interval": "month"},
                    },
                }
            ],
        },
    }


async def drive(
    name: str,
    events: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    send: Callable[[bytes, dict[str, str]], Awaitable[str]],
) -> Result:
    """Send every event with `concurrency` in flight; time the whole batch."""
    queue = iter(events)
    statuses: dict[str, int] = {}

    async def worker() -> None:
        for body, headers in queue:
            status = await send(body, headers)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, len(events), time.perf_counter() - started, statuses)


async def run_pipeline(
    database_url: str, events: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> Result:
    """verify + parse + `StripeIngest.submit` (group commit), no HTTP."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from cortiware.db.engine import create_engine
    from cortiware.webhooks import stripe_events
    from cortiware.webhooks.ingest import StripeIngest

    engine = create_engine(database_url, pool_size=concurrency)
    ingest = StripeIngest(async_sessionmaker(engine, expire_on_commit=False))

    async def send(body: bytes, headers: dict[str, str]) -> str:
        stripe_events.verify_signature(body, headers["Stripe-Signature"], SECRETS)
        return (await ingest.submit(stripe_events.parse_event(body))).status

    try:
        return await drive("pipeline (no HTTP)", events, concurrency, send)
    finally:
        await engine.dispose()


async def run_asgi(
    env: dict[str, str], events: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> Result:
    """Through the full ASGI app in this process."""
    from cortiware.app import create_app
    from cortiware.settings import Settings

    app = create_app(Settings.from_env(env))
    logging.getLogger().setLevel(logging.WARNING)  # no access line per request on the console
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # same ASGI, narrower types
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client,
    ):

        async def send(body: bytes, headers: dict[str, str]) -> str:
            response = await client.post("/api/webhooks/stripe", content=body, headers=headers)
            return str(response.json().get("status", response.status_code))

        return await drive("asgi (in-process app)", events, concurrency, send)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawHTTP:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams, for the load generator.

    Hand-written on purpose: on this 2-vCPU machine httpx costs about 1 ms of CPU per
    request, so with it the client, not the server, set the pace (measured: GET
    /api/health/live topped out at about 640 requests/s through httpx). This costs a few
    tens of microseconds. Requests are ours and well-formed; responses carry
    Content-Length (uvicorn does for these routes).
    """

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host, self.port = host, port
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._size = connections
        self._opened = 0

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request on a pooled connection; (status, body)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        for _ in range(3):  # a keep-alive connection closed under us: send again
            if self._idle.empty() and self._opened < self._size:
                self._opened += 1
                connection = await asyncio.open_connection(self.host, self.port)
            else:
                connection = await self._idle.get()
            reader, writer = connection
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                payload = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError):
                writer.close()
                self._opened -= 1
                continue
            self._idle.put_nowait(connection)
            return status, payload
        raise RuntimeError("connection kept failing")

    async def aclose(self) -> None:
        """Close every idle connection."""
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()


async def run_http(
    env: dict[str, str],
    events: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    workers: int,
) -> Result:
    """Over TCP to `cortiware serve --workers N`."""
    port = _free_port()
    command = [sys.executable, "-m", "cortiware.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            deadline = time.monotonic() + 120  # a loaded machine imports slowly
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("cortiware serve did not start")
                try:
                    if (await client.get("/api/health/live")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.25)

        raw = RawHTTP("127.0.0.1", port, concurrency)

        async def send(body: bytes, headers: dict[str, str]) -> str:
            status, payload = await raw.request("POST", "/api/webhooks/stripe", body, headers)
            return str(json.loads(payload).get("status", status))

        async def live(_: bytes, __: dict[str, str]) -> str:
            return str((await raw.request("GET", "/api/health/live"))[0])

        try:
            await drive("warm-up", events[:200], concurrency, send)
            result = await drive(
                f"http (uvicorn, {workers} workers)", events[200:], concurrency, send
            )
            # The harness's own ceiling: the same client and server on the cheapest route.
            report(
                await drive("http ceiling: GET /api/health/live", events[200:], concurrency, live)
            )
        finally:
            await raw.aclose()
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(result: Result) -> None:
    """One result as a Markdown table row."""
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(result.statuses.items()))
    print(
        f"| {result.name} | {result.events} | {result.seconds:.2f} | "
        f"{result.per_second:,.0f} | {statuses} |",
        flush=True,
    )


async def main(args: argparse.Namespace) -> list[Result]:
    """Run every mode against one scratch database."""
    results: list[Result] = []
    with scratch_database() as url:
        pairs = await prepare(url)
        env = environment(url)
        maker = EventMaker(pairs)
        modes = args.modes.split(",")
        if "pipeline" in modes:
            results.append(await run_pipeline(url, maker.make(args.events), args.concurrency))
            report(results[-1])
        if "asgi" in modes:
            results.append(await run_asgi(env, maker.make(args.events), args.concurrency))
            report(results[-1])
        if "http" in modes:
            results.append(
                await run_http(env, maker.make(args.events + 200), args.concurrency, args.workers)
            )
            report(results[-1])
    return results


def cli() -> None:
    """Parse arguments, run, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--modes", default="pipeline,asgi,http")
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; PostgreSQL at "
        f"{urlsplit(ADMIN_URL).hostname}; {args.concurrency} in flight; every event a new "
        "customer.subscription.updated signed with the second of two secrets\n"
    )
    print("| path | events | seconds | events/s | statuses |")
    print("| --- | ---: | ---: | ---: | --- |", flush=True)
    asyncio.run(main(args))
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    cli()
