"""The service's Lua scripts and the lean connection that runs them (`ScriptChannel`).

Every rate-limit decision and idempotency claim, completion and release is one `EVALSHA`
of a `LuaScript`. They go through `ScriptChannel`, one pipelined RESP connection per process
on an asyncio `Protocol` with hiredis parsing, instead of redis-py's client. Why hand-written:
measured on this repository's 2-vCPU machine (`python -m benchmarks.script_call`,
docs/benchmarks.md), one sequential `EVALSHA` through redis-py 8.1's asyncio client costs
96 µs of CPU (a task per write for its write timeout, a timeout context per read, the pool,
retry and observability layers) against 44 µs here, and a keyed request pays two on its
path. Everything else (cache,
sessions, health, the breaker's probe) stays on redis-py, and this module takes its
connection settings from redis-py's own parsing of `REDIS_URL` (address, TLS context,
username, password, database).

How it behaves:
- Replies are matched to requests in order (Redis answers each connection in order), so
  concurrent callers share the connection. A request made while others are in flight is
  buffered and written with them on the next loop tick: one `send` per batch under load, no
  extra tick when sequential.
- One watchdog timer, not one per command: when the oldest unanswered request is older than
  `command_timeout`, every pending request fails with redis-py's `TimeoutError` (the command
  may have run: "unsure") and the connection is dropped; the next call reconnects.
- Connection loss fails every pending request with `ConnectionError`. Connecting (TCP or
  unix socket, TLS, `AUTH`, `SELECT`) is bounded by `connect_timeout`, and a failure there is
  a `ConnectionError`: nothing was sent.
- Errors are redis-py's (`redis.exceptions`), so `KV.run` and its breaker treat them as
  before. `NOSCRIPT` (first use, or Redis restarted empty) loads the script and retries once.
- No flow control is needed: `KV` admits at most `max_connections` concurrent calls, and
  each request is a few hundred bytes.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import SSLConnection
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    InvalidResponse,
    NoScriptError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["LuaScript", "ScriptChannel", "pack_command"]

_Arg = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A Lua script and its SHA-1, as `EVALSHA` names it."""

    lua: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.lua.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", sha)

    def evalsha(self, keys: Sequence[str], args: Sequence[_Arg]) -> bytes:
        """The packed `EVALSHA` of this script with `keys` and `args`."""
        return pack_command("EVALSHA", self.sha, len(keys), *keys, *args)


def _bulk(arg: _Arg) -> bytes:
    if isinstance(arg, bytes):
        raw = arg
    elif isinstance(arg, str):
        raw = arg.encode()
    elif isinstance(arg, int):
        raw = b"%d" % arg
    else:
        raw = repr(arg).encode()
    return b"$%d\r\n%b\r\n" % (len(raw), raw)


def pack_command(*args: _Arg) -> bytes:
    """One RESP array of bulk strings (integers and floats in decimal, strings UTF-8)."""
    return b"*%d\r\n" % len(args) + b"".join([_bulk(arg) for arg in args])


def _reply_error(error: ResponseError) -> RedisError:
    message = str(error)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if message.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
        return AuthenticationError(message)
    return error


class _Waiter:
    __slots__ = ("deadline", "future")

    def __init__(self, future: asyncio.Future[Any], deadline: float) -> None:
        self.future = future
        self.deadline = deadline


class _RespProtocol(asyncio.Protocol):
    """One connection: writes requests, matches replies to waiters in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, command_timeout: float) -> None:
        self._loop = loop
        self._timeout = command_timeout
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._outbox: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not `asyncio.Transport` subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def request(self, packed: bytes) -> asyncio.Future[Any]:
        """Send `packed`; the future resolves to its reply (an error reply raises)."""
        if self.closed or self._transport is None:
            raise ConnectionError("Redis script connection is closed")
        future = self._loop.create_future()
        busy = bool(self._waiters)
        self._waiters.append(_Waiter(future, self._loop.time() + self._timeout))
        if not busy:
            self._transport.write(packed)
        else:
            if not self._outbox:
                self._loop.call_soon(self._flush)
            self._outbox.append(packed)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(self._waiters[0].deadline, self._check)
        return future

    def _flush(self) -> None:
        if self._outbox and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._outbox))
        self._outbox.clear()

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiters:
            return
        oldest = self._waiters[0].deadline
        if oldest <= self._loop.time():
            self._fail(RedisTimeoutError("Timeout reading from Redis (script connection)"))
            return
        self._watchdog = self._loop.call_at(oldest, self._check)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except InvalidResponse as exc:
                self._fail(ConnectionError(f"Protocol error from Redis: {exc}"))
                return
            if reply is False:
                return
            if not self._waiters:
                self._fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            future = self._waiters.popleft().future
            if future.done():  # the caller went away; the reply is dropped
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(_reply_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"Connection to Redis lost: {exc or 'closed by server'}"))

    def abort(self) -> None:
        """Drop the connection; pending requests fail with `ConnectionError`."""
        self._fail(ConnectionError("Redis script connection closed"))

    def _fail(self, error: Exception) -> None:
        """Fail every pending request with `error` and drop the connection."""
        self.closed = True
        self._outbox.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiters:
            future = self._waiters.popleft().future
            if not future.done():
                future.set_exception(error)
        if self._transport is not None:
            self._transport.abort()


class ScriptChannel:
    """Runs `LuaScript`s on one pipelined connection, reconnecting on demand."""

    __slots__ = (
        "_address",
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

        Raises `redis.exceptions.ConnectionError` (nothing ran), `TimeoutError` (it may have
        run) or `ResponseError` (the script failed).
        """
        packed = script.evalsha(keys, args)
        try:
            return await self._request(packed)
        except NoScriptError:
            await self._request(pack_command("SCRIPT", "LOAD", script.lua))
            return await self._request(packed)

    async def _request(self, packed: bytes) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        return await protocol.request(packed)

    async def _connected(self) -> _RespProtocol:
        # Single flight: concurrent callers share one connection attempt.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            # Retrieved even when every waiter was cancelled (no "never retrieved" warning).
            self._connecting.add_done_callback(lambda f: f.cancelled() or f.exception())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        timeout = self._command_timeout

        def factory() -> _RespProtocol:
            return _RespProtocol(loop, timeout)

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
        self._protocol = protocol
        return protocol

    def close(self) -> None:
        """Drop the connection; pending requests fail with `ConnectionError`."""
        if self._protocol is not None:
            self._protocol.abort()
            self._protocol = None
