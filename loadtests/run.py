"""Start a local service and run the Locust scenarios against it (bounded, loopback only).

    python loadtests/run.py [--users 20] [--duration 30s] [--workers 2] [--host URL]

Without --host it serves `cortiware serve --workers N` on a free loopback port, on the
embedded SQLite database unless DATABASE_URL/REDIS_URL are set, with limits raised so the
run measures the service rather than one client's quota. Exit status is Locust's: 1 when a
threshold of loadtests/locustfile.py is missed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("loadtests: the service exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("loadtests: the service did not start within 60 s")


def main() -> int:
    """Run the load test; return Locust's exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=int, default=10)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--host", help="target an already running service instead")
    args = parser.parse_args()

    server: subprocess.Popen[bytes] | None = None
    host = args.host
    with tempfile.TemporaryDirectory(prefix="cortiware-load-") as workdir:
        if host is None:
            port = _free_port()
            env = {
                **os.environ,
                "RATE_LIMIT_DEFAULT": "1000000/minute",
                "RATE_LIMIT_AUTH": "1000000/minute",
                "RATE_LIMIT_AUTH_IP": "1000000/minute",
                "RATE_LIMIT_ONBOARDING": "1000000/minute",
            }
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cortiware.cli",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                cwd=workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait(port, server)
            host = f"http://127.0.0.1:{port}"
        try:
            return subprocess.call(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(HERE / "locustfile.py"),
                    "--headless",
                    "-u",
                    str(args.users),
                    "-r",
                    str(args.spawn_rate),
                    "-t",
                    args.duration,
                    "--host",
                    host,
                    "--only-summary",
                    "--stop-timeout",
                    "5",
                ],
            )
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
