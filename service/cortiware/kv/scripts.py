"""The service's Lua scripts and the lean connection that runs them (`ScriptChannel`).

Every rate-limit decision and idempotency claim, completion and release is one `EVALSHA`
of a `LuaScript`. They go through `ScriptChannel`, one pipelined RESP connection per process
on an asyncio `Protocol` with hiredis parsing, instead of redis-py's client. Why hand-written:
measured on this repository's 2-vCPU machine (`python -m benchmarks.script_call`,
docs/benchmarks.md), one sequential `EVALSHA` through redis-py 8.1's asyncio client costs
96 µs of CPU (a task per write for its write timeout, a timeout context per read, the pool,
retry and observability layers) against 44 µs here, and a keyed request pays two on its
path. Everything else (cache, sessions, health, the breaker's probe) stays on redis-py, and
this module takes its connection settings from redis-py's own parsing of `REDIS_URL`
(address, TLS context, username, password, database).

How it behaves:
- Replies are matched to requests in order (Redis answers each connection in order), so
  concurrent callers share the connection. A request made while others are in flight is
  buffered and written with them on the next loop tick: one `send` per batch under load, no
  extra tick when sequential.
- One watchdog timer, not one per command: when the oldest request written and unanswered
  is older than `command_timeout`, every written request fails with redis-py's
  `TimeoutError` (the command may have run: "unsure") and the connection is dropped; the
  next call reconnects. The time counts from the write, not from the call, and a reply
  already waiting unread in the socket when the watchdog fires is not a timeout: Redis
  answered, and only this process was too busy to read it (the timeout measures Redis, not
  the event loop; uvloop also runs due timers before it polls the sockets). A watchdog that
  itself fires late (a busy loop) gives the oldest request one more full timeout, since
  uvloop sends buffered writes only at the end of a loop iteration.
- Connection loss after a request was written fails it with `ReplyLostError` (a
  `ConnectionError` and a `TimeoutError`: it may have run, so an idempotency claim is not
  then run from memory); a request never written fails with a plain `ConnectionError`.
  Connecting (TCP or unix socket, TLS, `AUTH`, `SELECT`) is bounded by `connect_timeout`,
  and a failure there is a `ConnectionError`: nothing was sent.
- Errors are redis-py's classes (`redis.exceptions`), so `KV.run`, `KV.script` and their
  breaker treat them as before. `NOSCRIPT` (first use, or Redis restarted empty) loads the
  script and retries once. After `READONLY`, `MASTERDOWN` or `LOADING` the connection is
  dropped, so the next call reconnects (to the new primary after a failover).
- No flow control is needed: `KV` admits at most `max_connections` concurrent calls, each
  request at most a stored response's size (a completion carries the response body).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import select
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, cast

import hiredis
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import SSLConnection
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    InvalidResponse,
    MasterDownError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["LuaScript", "ReplyLostError", "ScriptChannel", "pack_command"]

_Arg = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A Lua script and its SHA-1, as `EVALSHA` names it."""

    lua: str
    sha: str = field(init=False)
    _heads: dict[tuple[int, int], bytes] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )
    """(number of keys, number of args) -> the packed `EVALSHA sha numkeys` that starts
    every call with those counts (the same for every rate-limit decision)."""

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.lua.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", sha)

    def evalsha(self, keys: Sequence[str], args: Sequence[_Arg]) -> bytes:
        """The packed `EVALSHA` of this script with `keys` and `args`."""
        counts = (len(keys), len(args))
        head = self._heads.get(counts)
        if head is None:
            count = 3 + counts[0] + counts[1]
            head = b"*%d\r\n" % count + b"".join(
                [_bulk(a) for a in ("EVALSHA", self.sha, counts[0])]
            )
            self._heads[counts] = head
        return head + b"".join([_bulk(arg) for arg in (*keys, *args)])


def _bulk(arg: _Arg) -> bytes:
    if isinstance(arg, str):
        raw = arg.encode()
    elif isinstance(arg, bytes):
        raw = arg
    elif isinstance(arg, int):
        raw = b"%d" % arg
    else:
        raw = repr(arg).encode()
    return b"$%d\r\n%b\r\n" % (len(raw), raw)


def pack_command(*args: _Arg) -> bytes:
    """One RESP array of bulk strings (integers and floats in decimal, strings UTF-8)."""
    return b"*%d\r\n" % len(args) + b"".join([_bulk(arg) for arg in args])


# The classes redis-py's parser gives these replies (`redis._parsers.base`), so callers see
# the same exceptions either way.
_ERROR_CLASSES: Final[tuple[tuple[str, type[RedisError]], ...]] = (
    ("NOSCRIPT", NoScriptError),
    ("NOAUTH", AuthenticationError),
    ("WRONGPASS", AuthenticationError),
    ("NOPERM", NoPermissionError),
    ("READONLY", ReadOnlyError),
    ("LOADING", BusyLoadingError),
    ("MASTERDOWN", MasterDownError),
    ("OOM", OutOfMemoryError),
)
# After these the connection is on the wrong node or a node that cannot serve: after an
# ElastiCache failover the old primary answers READONLY to every write while still
# answering the breaker's PING, so the connection is dropped and the next call reconnects
# (and resolves the primary endpoint's name again).
_RECONNECT_AFTER: Final = (ReadOnlyError, MasterDownError, BusyLoadingError)


class ReplyLostError(ConnectionError, RedisTimeoutError):
    """The connection was lost after a request was written: it may have run on Redis.

    A `TimeoutError` too, so `KV.run` treats it as "unsure" (an idempotency claim must then
    not run from memory), and a `ConnectionError`, which is what happened.
    """


def _reply_error(error: ResponseError) -> RedisError:
    message = str(error)
    for prefix, cls in _ERROR_CLASSES:
        if message.startswith(prefix):
            return cls(message)
    return error


class _Waiter:
    __slots__ = ("deadline", "extended", "future", "sent")

    def __init__(self, future: asyncio.Future[Any], deadline: float, *, sent: bool) -> None:
        self.future = future
        self.deadline = deadline
        self.sent = sent
        self.extended = False


class _RespProtocol(asyncio.Protocol):
    """One connection: writes requests, matches replies to waiters in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, command_timeout: float) -> None:
        self._loop = loop
        self._timeout = command_timeout
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._outbox: list[tuple[bytes, _Waiter]] = []
        self._transport: asyncio.Transport | None = None
        self._fd = -1
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not `asyncio.Transport` subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1

    def request(self, packed: bytes) -> asyncio.Future[Any]:
        """Send `packed`; the future resolves to its reply (an error reply raises)."""
        if self.closed or self._transport is None:
            raise ConnectionError("Redis script connection is closed")
        future = self._loop.create_future()
        busy = bool(self._waiters)
        waiter = _Waiter(future, self._loop.time() + self._timeout, sent=not busy)
        self._waiters.append(waiter)
        if not busy:
            self._transport.write(packed)
        else:
            if not self._outbox:
                self._loop.call_soon(self._flush)
            self._outbox.append((packed, waiter))
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(self._waiters[0].deadline, self._check)
        return future

    def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch or self._transport is None or self.closed:
            return
        # The timeout counts from the write: time queued here (a stalled loop) is not Redis's.
        deadline = self._loop.time() + self._timeout
        for _, waiter in batch:
            waiter.sent, waiter.deadline = True, deadline
        self._transport.write(b"".join(packed for packed, _ in batch))

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiters:
            return
        oldest = self._waiters[0].deadline
        now = self._loop.time()
        if oldest <= now:
            waiter = self._waiters[0]
            if self._reply_waiting():
                # Redis answered in time; this process has not read it yet (a loop busy
                # with CPU work, or uvloop running timers before polling): not a timeout.
                waiter.deadline = oldest = now + self._timeout
            elif not waiter.extended and now - oldest > self._timeout / 4:
                # This check itself runs late: the loop was busy, and uvloop sends what
                # `write` buffered only at the end of a loop iteration, so the request may
                # have left just now. Redis gets one full timeout from here.
                waiter.extended = True
                waiter.deadline = oldest = now + self._timeout
            else:
                self._fail(RedisTimeoutError("Timeout reading from Redis (script connection)"))
                return
        self._watchdog = self._loop.call_at(oldest, self._check)

    def _reply_waiting(self) -> bool:
        """True when bytes from Redis wait unread in the socket (or it was closed)."""
        if self._fd < 0:
            return False
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        return bool(poller.poll(0))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except InvalidResponse as exc:
                self._fail(ReplyLostError(f"Protocol error from Redis: {exc}"))
                return
            if reply is False:
                return
            if not self._waiters:
                self._fail(ReplyLostError("Redis sent a reply nobody asked for"))
                return
            future = self._waiters.popleft().future
            error = _reply_error(reply) if isinstance(reply, ResponseError) else None
            if not future.done():  # else the caller went away; the reply is dropped
                if error is None:
                    future.set_result(reply)
                else:
                    future.set_exception(error)
            if isinstance(error, _RECONNECT_AFTER):
                self.abort()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ReplyLostError(f"Connection to Redis lost: {exc or 'closed by server'}"))

    def abort(self) -> None:
        """Drop the connection; pending requests fail (`ReplyLostError` once written)."""
        self._fail(ReplyLostError("Redis script connection closed"))

    def _fail(self, error: RedisError) -> None:
        """Fail every pending request and drop the connection.

        Requests already written get `error` (they may have run); those still queued here
        were never sent and get a plain `ConnectionError`.
        """
        self.closed = True
        self._outbox.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        unsent = ConnectionError(f"Not sent to Redis: {error}")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(error if waiter.sent else unsent)
        if self._transport is not None:
            self._transport.abort()


class ScriptChannel:
    """Runs `LuaScript`s on one pipelined connection, reconnecting on demand."""

    __slots__ = (
        "_address",
        "_closed",
        "_command_timeout",
        "_connect_timeout",
        "_connecting",
        "_db",
        "_password",
        "_protocol",
        "_ssl",
        "_username",
    )

    def __init__(
        self,
        address: str | tuple[str, int],
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 0.25,
        command_timeout: float = 0.25,
    ) -> None:
        self._address = address
        self._username = username
        self._password = password
        self._db = db
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Future[_RespProtocol] | None = None
        self._closed = False

    @classmethod
    def for_pool(
        cls, pool: ConnectionPool, *, connect_timeout: float, command_timeout: float
    ) -> ScriptChannel:
        """A channel to the server `pool` connects to, with the same credentials and TLS."""
        kwargs = dict(pool.connection_kwargs)
        ssl_context = None
        if issubclass(pool.connection_class, SSLConnection):
            ssl_context = pool.connection_class(**kwargs).ssl_context.get()
        path = kwargs.get("path")
        address = path if path else (kwargs.get("host", "localhost"), kwargs.get("port", 6379))
        return cls(
            address,
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            db=int(kwargs.get("db") or 0),
            ssl_context=ssl_context,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )

    async def evalsha(self, script: LuaScript, keys: Sequence[str], args: Sequence[_Arg]) -> Any:
        """Run `script` with `keys` and `args`; loads it first when Redis does not know it.

        Raises redis-py's exceptions: `ConnectionError` (nothing was sent), `TimeoutError`
        (sent, no reply in time: it may have run), `ReplyLostError` (sent, then the
        connection was lost: it may have run; both of the former) or `ResponseError` and its
        subclasses (Redis refused or the script failed).
        """
        packed = script.evalsha(keys, args)
        protocol = self._protocol  # `_request`, inlined: every rate-limit decision runs here
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        try:
            return await protocol.request(packed)
        except NoScriptError:
            await self._request(pack_command("SCRIPT", "LOAD", script.lua))
            return await self._request(packed)

    async def _request(self, packed: bytes) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        return await protocol.request(packed)

    async def _connected(self) -> _RespProtocol:
        if self._closed:
            raise ConnectionError("Redis script channel is closed")
        # Single flight: concurrent callers share one connection attempt.
        connecting = self._connecting
        if connecting is None:
            connecting = self._connecting = asyncio.ensure_future(self._connect())
            connecting.add_done_callback(self._connect_done)
        return await asyncio.shield(connecting)

    def _connect_done(self, future: asyncio.Future[_RespProtocol]) -> None:
        if self._connecting is future:
            self._connecting = None
        if not future.cancelled():
            future.exception()  # retrieved, even when every caller was cancelled meanwhile

    async def _connect(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        factory = partial(_RespProtocol, loop, self._command_timeout)
        protocol: _RespProtocol | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if isinstance(self._address, str):
                    _, protocol = await loop.create_unix_connection(
                        factory, self._address, ssl=self._ssl
                    )
                else:
                    host, port = self._address
                    _, protocol = await loop.create_connection(factory, host, port, ssl=self._ssl)
                if self._password is not None:
                    auth = (self._username, self._password) if self._username else (self._password,)
                    await protocol.request(pack_command("AUTH", *auth))
                if self._db:
                    await protocol.request(pack_command("SELECT", self._db))
        except BaseException as exc:
            if protocol is not None:
                protocol.abort()
            if isinstance(exc, AuthenticationError) or not isinstance(
                exc, OSError | TimeoutError | RedisError
            ):
                raise
            # Nothing of the caller's was sent: a plain connection failure, never "unsure".
            raise ConnectionError(f"Cannot connect the Redis script channel: {exc!r}") from exc
        if self._closed:  # closed while connecting
            protocol.abort()
            raise ConnectionError("Redis script channel is closed")
        self._protocol = protocol
        return protocol

    def close(self) -> None:
        """Drop the connection for good; pending requests fail with `ConnectionError`."""
        # A connection attempt in flight sees `_closed` when it ends and drops its result.
        self._closed = True
        if self._protocol is not None:
            self._protocol.abort()
            self._protocol = None
