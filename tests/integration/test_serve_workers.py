"""`cortiware serve --workers 2` over real sockets: the workers share a burst of new
connections (each listens on its own `SO_REUSEPORT` socket), where uvicorn's one shared
socket let whichever woke first take nearly all of them (63 of 64 seen under wrk)."""

from __future__ import annotations

import http.client
import os
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.servers import cortiware_serve

CONNECTIONS = 32


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def _established_inodes(port: int, state: str = "01") -> set[str]:
    """Socket inodes of TCP sockets in `state` (01 established, 0A listening) whose local
    port is `port`."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def test_two_workers_each_take_a_share_of_a_burst_of_connections(tmp_path: Path) -> None:
    with cortiware_serve(tmp_path, {"APP_VERSION": "r2026.12"}, workers=2) as base:
        port = urlsplit(base).port
        assert port is not None
        deadline = time.monotonic() + 60
        while len(_established_inodes(port, "0A")) < 2:  # until both workers listen
            assert time.monotonic() < deadline, "the second worker never listened"
            time.sleep(0.1)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)]
        connections += [
            http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for _ in range(CONNECTIONS - 1)
        ]
        for connection in connections:
            connection.connect()
        for connection in connections:  # every connection accepted and answered
            connection.request("GET", "/api/health/live")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b'{"status":"ok"}')
        supervisor = _supervisor_of(port)
        established = _established_inodes(port)
        per_worker = Counter(
            {pid: len(_socket_inodes(pid) & established) for pid in _children(supervisor)}
        )
        for connection in connections:
            connection.close()
    serving = {pid: n for pid, n in per_worker.items() if n}
    assert sum(serving.values()) == CONNECTIONS, per_worker
    assert len(serving) == 2, per_worker
    # Spread by the kernel's hash of the addresses: 16 each on average; under 6 on one
    # worker has a probability of about 1 in 10,000 (binomial, 32 draws).
    assert min(serving.values()) >= 6, per_worker


def _supervisor_of(port: int) -> int:
    """The `cortiware serve` process listening (through its workers) on `port`: the parent
    of the processes holding the connections."""
    established = _established_inodes(port)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if _socket_inodes(pid) & established:
                return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    raise AssertionError("no process holds the connections")
