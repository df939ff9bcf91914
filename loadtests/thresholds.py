"""The pass/fail rules of a load run, applied to the record `common.py` writes.

- No 401 ever (nobody is logged out), no 5xx and no connection error, and no other 4xx.
- To a request whose lifetime (made to answered) overlaps a database outage's window (from
  the fault until it is repaired, plus `RECOVERY_SECONDS`; `run.py` passes only the windows
  of `postgres-stop`) a 503 is allowed,
  and so is a 409 to a write retried with the same key while its first attempt still runs.
  Any 503 later than that means the service did not recover in time. Redis paused or
  killed: no window, so any 503 is an error.
- p95 under `P95_LIMIT_MS` per endpoint, except those in `P95_EXCEPTIONS`, each with its
  reason.
- For the `api` scenario, the achieved rate over the steady part of the run at least
  `RATE_TOLERANCE` of the target.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "P95_EXCEPTIONS",
    "P95_LIMIT_MS",
    "RECOVERY_SECONDS",
    "EndpointStats",
    "Verdict",
    "judge",
]

P95_LIMIT_MS = 500.0
RECOVERY_SECONDS = 5.0
RATE_TOLERANCE = 0.98
"""Locust's `constant_throughput` paces each user after its own response, so a run at
exactly the target lands within a few percent under it."""
P95_EXCEPTIONS: dict[str, tuple[float, str]] = {}
"""Endpoint → (p95 limit in ms, reason), for an endpoint that cannot meet `P95_LIMIT_MS` at
the requirements' scale. None today: accept and login (one argon2id operation each) had
2,000 ms until two full onboarding runs at 100 users on a quiet machine measured their p95 at
344/315 and 260/244 ms (loadtests/README.md)."""
Record = tuple[float, str, int, float]


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint's figures."""

    name: str
    count: int
    errors: int
    p50: float
    p95: float
    max: float


@dataclass(frozen=True)
class Verdict:
    """The figures of a run and what it missed (empty: passed)."""

    endpoints: list[EndpointStats]
    problems: list[str]
    total: int
    rate: float
    statuses: dict[int, int]

    @property
    def passed(self) -> bool:
        """True when no threshold was missed."""
        return not self.problems


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else 0.0


def _steady_rate(times: Sequence[float], warmup: float) -> float:
    if len(times) < 2:
        return 0.0
    start, end = times[0] + warmup, times[-1] - 2.0
    if end <= start:
        start, end = times[0], times[-1]
    inside = sum(1 for t in times if start <= t <= end)
    return inside / (end - start) if end > start else 0.0


def judge(
    records: Iterable[Record],
    *,
    windows: Sequence[tuple[float, float]] = (),
    target_rate: float | None = None,
    warmup: float = 10.0,
) -> Verdict:
    """Apply the rules to `records` (time, name, status, milliseconds); `windows` are the
    chaos windows (fault start, repaired)."""
    by_name: dict[str, list[Record]] = defaultdict(list)
    statuses: dict[int, int] = defaultdict(int)
    problems: list[str] = []
    late_503: list[tuple[float, float]] = []  # (answered, made), seconds after the repair
    other_errors: dict[tuple[str, int], int] = defaultdict(int)
    records = sorted(records)
    for record in records:
        at, name, status, ms = record
        by_name[name].append(record)
        statuses[status] += 1
        if status < 400 and status != 0:
            continue
        # The database was away (or recovering) at some time between the request being made
        # and answered: one made before the fault and answered during it counts, and so does
        # one made during recovery and answered later by a slow host.
        made = at - ms / 1000
        in_window = any(made <= end + RECOVERY_SECONDS and at >= start for start, end in windows)
        if status in (409, 503) and in_window:
            continue  # 409: a write retried after a 503 while its first attempt still ran
        if status == 503 and windows:
            repaired = max((end for start, end in windows if start <= at), default=at)
            late_503.append((at - repaired, at - ms / 1000 - repaired))
            continue
        other_errors[(name, status)] += 1
    for (name, status), count in sorted(other_errors.items()):
        problems.append(f"{count} x {status or 'connection error'} on {name}")
    if late_503:
        answered = max(a for a, _ in late_503)
        made = max(m for _, m in late_503)
        problems.append(
            f"{len(late_503)} x 503 outside the chaos windows (+{RECOVERY_SECONDS:.0f} s "
            f"recovery): answered up to {answered:+.1f} s and made up to {made:+.1f} s "
            "from the repair"
        )
    endpoints = []
    for name, rows in sorted(by_name.items()):
        times = [ms for _, _, _, ms in rows]
        stats = EndpointStats(
            name=name,
            count=len(rows),
            errors=sum(1 for _, _, status, _ in rows if status >= 400 or status == 0),
            p50=_percentile(times, 0.5),
            p95=_percentile(times, 0.95),
            max=max(times),
        )
        endpoints.append(stats)
        limit = P95_EXCEPTIONS.get(name, (P95_LIMIT_MS, ""))[0]
        if stats.p95 > limit:
            problems.append(f"{name} p95 {stats.p95:.0f} ms > {limit:.0f} ms")
    rate = _steady_rate([r[0] for r in records], warmup)
    if target_rate is not None and rate < RATE_TOLERANCE * target_rate:
        problems.append(f"rate {rate:.0f} req/s < {RATE_TOLERANCE:.0%} of {target_rate:.0f}")
    if not records:
        problems.append("no requests were made")
    return Verdict(endpoints, problems, len(records), rate, dict(statuses))
