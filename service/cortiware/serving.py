"""How `cortiware serve` runs uvicorn: its workers each listen on a socket of their own
(`SO_REUSEPORT`), and its HTTP protocol sends each response's head in the same write as its
body.

Workers. uvicorn's supervisor binds one socket and every worker accepts from it; uvloop
accepts every waiting connection at once, so whichever worker wakes first takes a burst of
new connections: 64 connections opened together landed 41/23, 46/18 and 63/1 on two
workers (`ss -tnp` under wrk), and one worker then served at most one core while the other
idled, its queue setting the p99. A load balancer's keep-alive connections to a task are
such a burst. `run` gives uvicorn's supervisor a `ReusePortSocket`: bound in the parent
with `SO_REUSEPORT` and never listened on there, it arrives in each worker (spawned, so
pickled) as a new socket bound to the same address, and the kernel spreads connections
over the workers' sockets by their addresses' hash. Everything else (spawning, health
pings, restarts, signals) is uvicorn's supervisor.

Protocol.
uvicorn's httptools protocol writes a response in two `transport.write` calls, the head at
`http.response.start` and the body at `http.response.body`: two `write` system calls and,
with TCP_NODELAY, two TCP segments for every small JSON answer (`strace -c` on a worker
under wrk: 2 writes and 1 read per request). `HeadWithBodyProtocol` holds the head until the
body's write, then hands both to the transport at once (`writelines`: one `writev`), as
aiohttp's server does for small responses (aiohttp#10991). A head whose body does not follow
within the same event-loop iteration (a streamed response, a `HEAD` answer, a `100
Continue`) is written at the end of that iteration (`call_soon`), never later: nothing
waits on the application.

Hand-written because uvicorn offers an option for neither; both wrap what uvicorn is given
(its socket, its transport), not its code, so the rest of uvicorn (parsing, flow control,
keep-alive, errors, the supervisor) is its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any, Final, TypeVar

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import ChangeReload, Multiprocess

__all__ = ["HeadWithBodyProtocol", "HeadWithBodyTransport", "ReusePortSocket", "run"]

_Socket = TypeVar("_Socket", bound=socket.socket)
_HEAD_START: Final = b"HTTP/1.1 "
_HEAD_END: Final = b"\r\n\r\n"


class HeadWithBodyTransport:
    """A transport that keeps a response head (a write that starts with the status line and
    ends with the blank line) until the next write, or until the end of the event-loop
    iteration, whichever comes first. Everything else is the wrapped transport's."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif (
            isinstance(data, bytes)
            and data.startswith(_HEAD_START)
            and data.endswith(_HEAD_END)
            and not self._transport.is_closing()
        ):
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.flush()
        self._transport.writelines(list_of_data)

    def flush(self) -> None:
        """Write a held head now."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        held = 0 if self._head is None else len(self._head)
        return self._transport.get_write_buffer_size() + held

    def __getattr__(self, name: str) -> Any:
        # get_extra_info, pause_reading, resume_reading, set_protocol, …: the transport's.
        return getattr(self._transport, name)


class HeadWithBodyProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a `HeadWithBodyTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped: Any = HeadWithBodyTransport(transport, self.loop)
        super().connection_made(wrapped)


class ReusePortSocket(socket.socket):
    """A bound TCP socket (`SO_REUSEPORT`) that arrives in a spawned process as a new socket
    bound to the same address, for that process alone to listen on."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # multiprocessing's own reducer (a duplicate of this socket, hence one accept queue
        # shared by every worker) is registered for `socket.socket` exactly, not subclasses.
        return (_bound_reuse_port, (self.family, self.getsockname()))


def _bound_reuse_port(family: int, address: Any) -> socket.socket:
    return _bind(socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP), address)


def _bind(sock: _Socket, address: Any) -> _Socket:
    """`sock` with `SO_REUSEADDR` and `SO_REUSEPORT`, bound to `address` (closed on failure)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def reuse_port_socket(host: str, port: int) -> ReusePortSocket:
    """The supervisor's socket: bound (so the port is taken and a bad address fails at
    once), never listened on; each worker listens on its own (`ReusePortSocket`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return _bind(ReusePortSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP), (host, port))


def run(app: str, **options: Any) -> None:
    """`uvicorn.run(app, **options)`, with `ReusePortSocket` under several workers."""
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    try:
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
        elif config.workers > 1:
            try:
                sock = reuse_port_socket(config.host, config.port)
            except OSError as error:
                # As uvicorn's own bind: one line, the address and why.
                print(f"cannot listen on {config.host}:{config.port}: {error}", file=sys.stderr)
                sys.exit(STARTUP_FAILURE)
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on http://%s:%d, %d workers on SO_REUSEPORT sockets",
                config.host,
                sock.getsockname()[1],
                config.workers,
            )
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if not server.started and not config.should_reload and config.workers == 1:
        sys.exit(STARTUP_FAILURE)
