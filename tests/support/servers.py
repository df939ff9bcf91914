"""Throw-away servers for tests: private Redis processes a test may kill (never the shared
one), and `cortiware serve` processes on free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server process on its own port, startable and killable.

    `extra_args` go to redis-server as given (`--requirepass`, `--unixsocket`...); with `tls`
    (certificate, key, CA file) the port speaks TLS only and `url` is `rediss://`.
    """

    def __init__(
        self,
        workdir: Path,
        extra_args: Sequence[str] = (),
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its redis:// (or rediss://) URL."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if self.tls is None:
            listen = ["--port", str(self.port)]
        else:
            cert, key, ca = self.tls
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert)]
            listen += ["--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)]
            listen += ["--tls-auth-clients", "no"]
        self.process = subprocess.Popen(
            [
                binary,
                *listen,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        """Kill it hard (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def redis_server(
    workdir: Path, extra_args: Sequence[str] = (), tls: tuple[Path, Path, Path] | None = None
) -> Iterator[RedisServer]:
    """A running private Redis (see `RedisServer`), killed at the end."""
    server = RedisServer(workdir, extra_args, tls)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    """Return once `process` accepts connections on loopback `port`; raise with its log if
    it exits first or does not listen within 60 s."""
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        if process.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve did not listen within 60 s:\n{log_path.read_text()}")
        time.sleep(0.1)


_SERVE = (sys.executable, "-m", "cortiware.cli", "serve")


@contextlib.contextmanager
def cortiware_serve(
    workdir: Path, env: dict[str, str] | None = None, *, workers: int = 1
) -> Iterator[str]:
    """`cortiware serve --workers WORKERS` on a free loopback port, run in `workdir` with
    only PATH, HOME, LANG and VIRTUAL_ENV from this environment plus `env`; yields its base
    URL and terminates it at the end. Fails the test with the server's log if it exits
    early."""
    port = free_port()
    keep = ("PATH", "HOME", "LANG", "VIRTUAL_ENV")
    process_env = {k: v for k, v in os.environ.items() if k in keep} | (env or {})
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*_SERVE, "--port", str(port), "--workers", str(workers)],
            cwd=workdir,
            env=process_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_listening(process, port, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)
