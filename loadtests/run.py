"""Run one of the requirements' load scenarios and judge it (bounded, loopback unless --host).

    python loadtests/run.py --scenario onboarding|api|dashboard [--short]
        [--chaos redis-pause|redis-kill|postgres-stop] [--host URL] [--users N] [--duration 5m]

Without --host it starts a private stack on free loopback ports: a throw-away PostgreSQL
cluster (`initdb`/`pg_ctl`), a private `redis-server`, `cortiware migrate` and `seed`, then
`cortiware serve --workers 2` with the rate limits raised (the run measures the service,
not one client's quota). `--chaos` breaks that stack mid-run: Redis paused (`CLIENT PAUSE`)
or killed and restarted, PostgreSQL stopped and started; then every write the service
acknowledged (2xx) is looked up in the database. Locust (FastHttpUser) runs in its own
process. The verdict (`loadtests/thresholds.py`) is printed with the host's load average;
exit status 1 when a threshold was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from redis import Redis  # noqa: E402
from sqlalchemy import text  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402
from tests.support.servers import RedisServer, free_port  # noqa: E402
from thresholds import P95_EXCEPTIONS, Verdict, judge  # noqa: E402

from cortiware.db.engine import create_engine  # noqa: E402

SCENARIOS: dict[str, dict[str, Any]] = {
    # users, spawn rate, full duration, short duration
    "onboarding": {"users": 100, "spawn": 20, "full": "3m", "short": "30s"},
    "api": {"users": 100, "spawn": 50, "full": "5m", "short": "30s", "rate": 1000.0},
    "dashboard": {"users": 50, "spawn": 10, "full": "3m", "short": "30s"},
}
CHAOS_OUTAGE_SECONDS = {"redis-pause": 3.0, "redis-kill": 3.0, "postgres-stop": 5.0}
DATABASE_CHAOS = frozenset({"postgres-stop"})
"""The faults during which a 503 is allowed: the database away. A Redis stall or kill must
not give any error (sessions from PostgreSQL, limits and idempotency from memory, a claim in
doubt waits for Redis)."""
UNLIMITED = {
    "RATE_LIMIT_DEFAULT": "1000000/minute",
    "RATE_LIMIT_AUTH": "1000000/minute",
    "RATE_LIMIT_AUTH_IP": "1000000/minute",
    "RATE_LIMIT_ONBOARDING": "1000000/minute",
}


@dataclass
class Stack:
    """A running local stack: its URL, servers and environment."""

    host: str
    env: dict[str, str]
    postgres: PostgresServer
    redis: RedisServer
    windows: list[tuple[float, float]] = field(default_factory=list)

    def break_it(self, chaos: str) -> None:
        """Inflict `chaos` and repair it; the window is recorded."""
        started = time.time()
        outage = CHAOS_OUTAGE_SECONDS[chaos]
        if chaos == "redis-pause":
            admin = Redis(port=self.redis.port)
            admin.execute_command("CLIENT", "PAUSE", int(outage * 1000), "ALL")
            admin.close()
            time.sleep(outage)
        elif chaos == "redis-kill":
            self.redis.kill()
            time.sleep(outage)
            self.redis.start()
        else:
            self.postgres.stop("immediate")
            time.sleep(outage)
            self.postgres.start()
        self.windows.append((started, time.time()))
        print(f"chaos: {chaos} from +0 to +{time.time() - started:.1f} s", flush=True)


def _run(command: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def _wait_live(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"loadtests: the service exited during start-up:\n{log.read_text()[-3000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/api/health/live", timeout=2) as response,  # noqa: S310 - loopback
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    sys.exit("loadtests: the service did not answer within 180 s")


@contextlib.contextmanager
def local_stack(workdir: Path, workers: int) -> Iterator[Stack]:
    """PostgreSQL, Redis and `cortiware serve` on free loopback ports, removed at the end."""
    postgres = PostgresServer()
    redis = RedisServer(workdir)
    server: subprocess.Popen[bytes] | None = None
    try:
        postgres.start()
        redis.start()
        port = free_port()
        env = {
            **os.environ,
            **UNLIMITED,
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
        }
        cli = [sys.executable, "-m", "cortiware.cli"]
        _run([*cli, "migrate"], env, workdir)
        _run([*cli, "seed"], env, workdir)
        log = workdir / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [*cli, "serve", "--port", str(port), "--workers", str(workers)],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        host = f"http://127.0.0.1:{port}"
        _wait_live(host, server, log)
        yield Stack(host, env, postgres, redis)
    finally:
        if server is not None:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=30)
            _summarise_log(workdir / "serve.log")
        redis.kill()
        postgres.remove()


def _summarise_log(log: Path) -> None:
    """Print how often the service logged each warning or error (what the run provoked)."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                error = f" ({entry['error']})" if entry.get("error") else ""
                key = f"{entry['level']}: {entry.get('event')}{error}"
                counts[key] = counts.get(key, 0) + 1
    for key, count in sorted(counts.items()):
        print(f"service log: {count} x {key}")


async def _missing_writes(database_url: str, writes: list[list[str]]) -> list[str]:
    tables = {"invite": "onboarding_invites", "organization": "organizations"}
    engine = create_engine(database_url, pool_size=1)
    missing: list[str] = []
    try:
        async with engine.connect() as conn:
            for kind, table in tables.items():
                ids = [identifier for k, identifier in writes if k == kind]
                if not ids:
                    continue
                found = await conn.execute(
                    text(f"SELECT id::text FROM {table} WHERE id::text = ANY(:ids)"),  # noqa: S608 - fixed names
                    {"ids": ids},
                )
                present = {row[0] for row in found}
                missing += [f"{kind} {i}" for i in ids if i not in present]
    finally:
        await engine.dispose()
    return missing


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]] if duration[-1] in units else float(duration)


def _print(verdict: Verdict, scenario: str, load: tuple[float, float]) -> None:
    print(f"\nscenario {scenario}: {verdict.total} requests, {verdict.rate:.0f} req/s steady")
    print("| endpoint | requests | errors | p50 ms | p95 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for e in verdict.endpoints:
        print(f"| {e.name} | {e.count} | {e.errors} | {e.p50:.0f} | {e.p95:.0f} | {e.max:.0f} |")
    print(f"statuses: {dict(sorted(verdict.statuses.items()))}")
    print(f"load average (1 min) at start {load[0]:.2f}, at end {load[1]:.2f} (2 vCPUs)")
    for name, (limit, reason) in P95_EXCEPTIONS.items():
        if any(e.name == name for e in verdict.endpoints):
            print(f"p95 exception: {name} up to {limit:.0f} ms: {reason}")


@dataclass
class Outcome:
    """What a run produced: the record, the chaos windows, writes not found afterwards."""

    record: dict[str, Any]
    windows: list[tuple[float, float]]
    missing: list[str]
    local: bool


def _execute(args: argparse.Namespace, users: int, duration: str) -> Outcome:
    spec = SCENARIOS[args.scenario]
    with tempfile.TemporaryDirectory(prefix="cortiware-load-") as tmp:
        workdir = Path(tmp)
        record_path = workdir / "record.json"
        with contextlib.ExitStack() as stack:
            local = None if args.host else stack.enter_context(local_stack(workdir, args.workers))
            host = args.host or (local.host if local else "")
            env = {
                **os.environ,
                "LOAD_RECORD": str(record_path),
                "API_USERS": str(users),
                "API_RATE": str(spec.get("rate") or 0),
            }
            locust = subprocess.Popen(
                [
                    sys.executable, "-m", "locust",
                    "-f", str(HERE / f"{args.scenario}.py"),
                    "--headless", "-u", str(users), "-r", str(spec["spawn"]),
                    "-t", duration, "--host", host,
                    "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING",
                    *(["--processes", str(args.processes)] if args.processes > 1 else []),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if args.chaos and local is not None:
                at = max(5.0, _seconds(duration) * 0.4)
                threading.Timer(at, local.break_it, args=(args.chaos,)).start()
            locust.wait()
            record: dict[str, list[Any]] = {"requests": [], "writes": [], "errors": []}
            for part in workdir.glob("record.json.*"):  # one per Locust process
                for key, rows in json.loads(part.read_text()).items():
                    record[key] += rows
            missing: list[str] = []
            if local is not None and args.chaos:
                missing = asyncio.run(
                    _missing_writes(local.env["DATABASE_URL"], record.get("writes", []))
                )
            return Outcome(record, local.windows if local else [], missing, local is not None)


def main() -> int:
    """Run the scenario; 0 when every threshold holds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="api")
    parser.add_argument("--short", action="store_true", help="the CI form (under a minute)")
    parser.add_argument("--chaos", choices=sorted(CHAOS_OUTAGE_SECONDS))
    parser.add_argument("--host", help="an already running service (no chaos, no write check)")
    parser.add_argument("--users", type=int)
    parser.add_argument("--duration", help="e.g. 90s, 5m")
    parser.add_argument("--workers", type=int, default=2, help="service worker processes")
    parser.add_argument(
        "--processes", type=int, default=1, help="Locust processes (one core each at most)"
    )
    parser.add_argument("--report", type=Path, help="write the verdict as JSON here")
    args = parser.parse_args()
    if args.chaos and args.host:
        parser.error("--chaos needs the local stack (it stops its servers)")
    spec = SCENARIOS[args.scenario]
    users = args.users or spec["users"]
    duration = args.duration or spec["short" if args.short else "full"]
    load_start = os.getloadavg()[0]
    outcome = _execute(args, users, duration)
    verdict = judge(
        [tuple(r) for r in outcome.record.get("requests", [])],
        windows=outcome.windows if args.chaos in DATABASE_CHAOS else (),
        target_rate=spec.get("rate"),
    )
    problems = list(verdict.problems)
    if args.chaos and not outcome.windows:
        problems.append("the chaos never happened (the run ended first)")
    if outcome.missing:
        problems.append(
            f"{len(outcome.missing)} acknowledged writes missing: {outcome.missing[:5]}"
        )
    title = args.scenario + (f" + {args.chaos}" if args.chaos else "")
    _print(verdict, title, (load_start, os.getloadavg()[0]))
    if args.chaos:
        writes = len(outcome.record.get("writes", []))
        lost = len(outcome.missing)
        print(f"acknowledged writes checked in the database: {writes}, missing: {lost}")
    errors: dict[tuple[str, int, str], int] = {}
    for name, status, detail in outcome.record.get("errors", []):
        errors[(name, status, detail)] = errors.get((name, status, detail), 0) + 1
    for (name, status, detail), count in sorted(errors.items(), key=lambda item: -item[1]):
        print(f"error: {count} x {status or 'connection error'} on {name}: {detail}")
    for problem in problems:
        print(f"THRESHOLD MISSED: {problem}")
    print("thresholds: " + ("FAIL" if problems else "PASS"))
    if args.report:
        report = {
            "scenario": title,
            "duration": duration,
            "users": users,
            "total": verdict.total,
            "rate": verdict.rate,
            "endpoints": [e.__dict__ for e in verdict.endpoints],
            "problems": problems,
            "load_average": [load_start, os.getloadavg()[0]],
        }
        args.report.write_text(json.dumps(report, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
