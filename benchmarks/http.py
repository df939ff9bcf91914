"""Requests per second of the whole service against a bare Litestar app, measured with wrk.

Two servers, each `uvicorn --workers 2` (uvloop, httptools), on private PostgreSQL and Redis
state (a scratch database on the shared server, dropped afterwards; the private
redis-server of `make bench`):

- `full`: the service itself (`cortiware serve --workers 2`: a `SO_REUSEPORT` socket per
  worker, head and body in one write), every middleware, the access log on stdout (sent to
  /dev/null), `GET /api/plans` rate-limited and read through the cache as in production;
- `bare`: a Litestar app with only `GET /api/plans` (the same plans, kept in memory, encoded
  by Litestar on every request) and `GET /api/health/live`, on stock `uvicorn --workers 2`
  (one shared socket, two writes per response). `benchmarks.inprocess` compares the apps
  alone.

Each path is measured in rounds; a round runs `wrk -t1 -c64 -d<seconds>s --latency` against
both servers, one after the other, in alternating order, so both meet the same machine noise;
the reported ratio is the median over rounds of full/bare requests per second. A run with any
non-2xx answer is an error (a 429 would mean the limit, not the service, was measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
from litestar import Litestar, get

from benchmarks._redis import free_port, private_redis
from benchmarks.webhooks import scratch_database
from cortiware.monetization.schemas import PlanOut

TARGETS: Final = {"/api/plans": 0.40, "/api/health/live": 0.75}
"""Full/bare requests per second each path must reach (issue 14)."""
P99_TARGET_MS: Final = 10.0
CONNECTIONS: Final = 64
PLANS_FILE_ENV: Final = "CORTIWARE_BENCH_PLANS_FILE"
_ROOT: Final = Path(__file__).resolve().parents[1]


@get("/api/plans", sync_to_thread=False)
def _bare_plans() -> list[PlanOut]:
    return _PLANS


@get("/api/health/live", sync_to_thread=False)
def _bare_live() -> dict[str, str]:
    return {"status": "ok"}


_PLANS: list[PlanOut] = []


def bare_app() -> Litestar:
    """Litestar with the two paths only; the plans come from the file the harness wrote."""
    _PLANS[:] = msgspec.json.decode(
        Path(os.environ[PLANS_FILE_ENV]).read_bytes(), type=list[PlanOut]
    )
    return Litestar(route_handlers=[_bare_plans, _bare_live], logging_config=None)


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run."""

    requests_per_second: float
    p99_ms: float
    errors: int
    """Non-2xx answers plus socket errors."""
    cpu_us: float = 0.0
    """Server CPU time (every process of the server: user + system) per request, in µs."""


_UNITS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> WrkResult:
    """The figures of `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if rps is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = 0
    if non2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(non2xx.group(1))
    if socket := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in socket.groups())
    return WrkResult(float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)], errors)


_TICK: Final = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    found = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            for child in children:
                found += _descendants(int(child))
    return found


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its descendants (Linux /proc)."""
    total = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def wrk(url: str, seconds: float, server_pid: int | None = None) -> WrkResult:
    """`wrk -t1 -c64 -d<seconds>s --latency url`, with the server's CPU per request."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", url]
    cpu_before = process_tree_cpu(server_pid) if server_pid else 0.0
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30)
    result = parse_wrk(done.stdout)
    if server_pid is None:
        return result
    requests = result.requests_per_second * seconds
    cpu_us = (process_tree_cpu(server_pid) - cpu_before) / max(requests, 1) * 1e6
    return WrkResult(result.requests_per_second, result.p99_ms, result.errors, cpu_us)


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/api/health/live"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} not ready after {timeout:g} s")


@contextlib.contextmanager
def _server(command: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    process = subprocess.Popen(
        command,
        env=env,
        cwd=_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(port, process)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def service_environment(
    database_url: str, redis_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The service's environment: test mode, the scratch database and the private Redis."""
    from tests.conftest import TEST_ENV

    return {
        **os.environ,
        **TEST_ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CORTIWARE_REDIS_PREFIX": "bench-http:",
        # Limited as in production, but high enough that wrk is never refused.
        "RATE_LIMIT_DEFAULT": "1000000/second",
        **(extra or {}),
    }


async def prepare(database_url: str) -> None:
    """Migrate the scratch database and give it a catalog of three plans, two prices each."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from cortiware.db import migrate
    from cortiware.db.engine import create_engine
    from cortiware.db.models import Plan, Price
    from cortiware.seed import seed

    await migrate.upgrade(database_url)
    engine = create_engine(database_url, pool_size=1)
    async with AsyncSession(engine) as session, session.begin():
        await seed(session)
        for code, name, cents in (("team", "Team", 9900), ("enterprise", "Enterprise", 49900)):
            plan = Plan(
                code=code,
                name=name,
                description=f"The {name} plan.",
                features=["Unlimited users", "Audit log", "Priority support", "SSO"],
            )
            session.add(plan)
            await session.flush()
            session.add(
                Price(plan_id=plan.id, amount_cents=cents, currency="usd", interval="month")
            )
            session.add(
                Price(plan_id=plan.id, amount_cents=cents * 10, currency="usd", interval="year")
            )
    await engine.dispose()


@dataclass(frozen=True, slots=True)
class PathResult:
    """Rounds of one path: (bare, full, load average) per round."""

    path: str
    rounds: list[tuple[WrkResult, WrkResult, float]]

    @property
    def ratio(self) -> float:
        """Median over rounds of full / bare requests per second."""
        return statistics.median(
            f.requests_per_second / b.requests_per_second for b, f, _ in self.rounds
        )

    @property
    def cpu_ratio(self) -> float:
        """Median over rounds of bare / full server CPU per request (the steadier figure)."""
        return statistics.median(b.cpu_us / f.cpu_us for b, f, _ in self.rounds if f.cpu_us)

    @property
    def worst_p99_ms(self) -> float:
        """The full app's highest p99 over the rounds."""
        return max(f.p99_ms for _, f, _ in self.rounds)

    @property
    def met(self) -> bool:
        """Ratio and p99 targets both met."""
        return self.ratio >= TARGETS[self.path] and self.worst_p99_ms < P99_TARGET_MS


def measure(
    database_url: str,
    redis_url: str,
    *,
    rounds: int,
    seconds: float,
    warm_up: float = 2.0,
    extra_env: dict[str, str] | None = None,
) -> list[PathResult]:
    """Start both servers, run the rounds for each path, stop them."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    env = service_environment(database_url, redis_url, extra_env)
    ports = {"bare": free_port(), "full": free_port()}
    full = [str(Path(sys.executable).parent / "cortiware"), "serve", "--workers", "2"]
    full += ["--port", str(ports["full"])]
    with tempfile.TemporaryDirectory() as workdir, _server(full, env, ports["full"]) as full_pid:
        plans = urllib.request.urlopen(f"http://127.0.0.1:{ports['full']}/api/plans").read()
        plans_file = Path(workdir) / "plans.json"
        plans_file.write_bytes(plans)
        bare = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.http:bare_app"]
        bare += ["--workers", "2", "--port", str(ports["bare"]), "--log-level", "warning"]
        bare += ["--no-access-log", "--no-server-header"]
        pids = {"full": full_pid}
        with _server(bare, {**env, PLANS_FILE_ENV: str(plans_file)}, ports["bare"]) as bare_pid:
            pids["bare"] = bare_pid
            results = []
            for path in TARGETS:
                urls = {name: f"http://127.0.0.1:{port}{path}" for name, port in ports.items()}
                for url in urls.values():
                    wrk(url, warm_up)
                measured: list[tuple[WrkResult, WrkResult, float]] = []
                for i in range(rounds):
                    order = ["bare", "full"] if i % 2 == 0 else ["full", "bare"]
                    got = {name: wrk(urls[name], seconds, pids[name]) for name in order}
                    for name, result in got.items():
                        if result.errors:
                            raise RuntimeError(f"{name} {path}: {result.errors} errors")
                    measured.append((got["bare"], got["full"], os.getloadavg()[0]))
                results.append(PathResult(path, measured))
    return results


def report(results: list[PathResult]) -> bool:
    """Print each round and the verdicts; True when every target is met."""
    print(
        "| path | round | bare req/s | bare p99 ms | bare CPU µs/req | full req/s | full p99 ms "
        "| full CPU µs/req | ratio | load 1m |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        for i, (bare, full, load) in enumerate(result.rounds, 1):
            print(
                f"| `GET {result.path}` | {i} | {bare.requests_per_second:,.0f} "
                f"| {bare.p99_ms:.2f} | {bare.cpu_us:.0f} | {full.requests_per_second:,.0f} "
                f"| {full.p99_ms:.2f} | {full.cpu_us:.0f} "
                f"| {full.requests_per_second / bare.requests_per_second:.2f} | {load:.2f} |"
            )
    print()
    for result in results:
        print(
            f"GET {result.path}: full/bare {result.ratio:.2f}"
            f" (target >= {TARGETS[result.path]:.2f}),"
            f" full p99 <= {result.worst_p99_ms:.2f} ms (target < {P99_TARGET_MS:g} ms):"
            f" {'met' if result.met else 'NOT met'};"
            f" CPU per request bare/full {result.cpu_ratio:.2f} (for information)"
        )
    return all(r.met for r in results)


def run(*, rounds: int, seconds: float, extra_env: dict[str, str] | None = None) -> bool:
    """Scratch database and private Redis, the measurement, the report; True when met."""
    with scratch_database() as database_url, private_redis(cpu=None) as redis_url:
        asyncio.run(prepare(database_url))
        settings = " ".join(f"{k}={v}" for k, v in (extra_env or {}).items()) or "defaults"
        print(
            f"GET paths, the service ({settings}) vs bare Litestar: uvicorn --workers 2 each, "
            f"wrk -t1 -c{CONNECTIONS} -d{seconds:g}s, {rounds} rounds, alternating order; "
            f"load average before: {os.getloadavg()[0]:.2f}\n"
        )
        results = measure(
            database_url, redis_url, rounds=rounds, seconds=seconds, extra_env=extra_env
        )
        return report(results)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options (also `make bench`'s)."""
    # Four rounds: the bare app's own rate has moved by up to 45 % between two rounds of one
    # run on this VM (docs/benchmarks.md); the median of four is less at its mercy than of two.
    parser.add_argument("--http-rounds", type=int, default=4, help="wrk rounds per path")
    parser.add_argument("--http-seconds", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument(
        "--access-log-sample-rate",
        help="ACCESS_LOG_SAMPLE_RATE for the service (default: the service's default)",
    )


def run_from(args: argparse.Namespace) -> bool:
    """`run` with the options of `add_arguments`."""
    extra = {}
    if args.access_log_sample_rate is not None:
        extra["ACCESS_LOG_SAMPLE_RATE"] = args.access_log_sample_rate
    return run(rounds=args.http_rounds, seconds=args.http_seconds, extra_env=extra)


def main() -> None:
    """`python -m benchmarks.http [--http-rounds 2] [--http-seconds 10]`; exit 1 when not met."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    sys.exit(0 if run_from(parser.parse_args()) else 1)


if __name__ == "__main__":
    main()
