"""`HeadWithBodyProtocol`: uvicorn (real, on a socket) with a response's head written
together with its body, and never held back from a client waiting for it.

The server tests run uvicorn itself with the protocol on a loopback port and read its raw
bytes; the write-count test records the writes reaching a stand-in transport (a fake: it
shows what the wrapper hands on, not what the kernel sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn

from cortiware.serving import HeadWithBodyProtocol, HeadWithBodyTransport

_App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def _serving(app: _App) -> AsyncIterator[int]:
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=HeadWithBodyProtocol, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _json_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b'{"status":"ok"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await asyncio.wait_for(reader.readexactly(length), 5)


async def test_keep_alive_and_pipelined_requests_get_whole_responses_in_order() -> None:
    async with _serving(_json_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(request)
        first = await _read_response(reader)
        writer.write(request * 3)  # pipelined
        rest = [await _read_response(reader) for _ in range(3)]
        writer.close()
    for head, body in (first, *rest):
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert body == b'{"status":"ok"}'


async def test_head_answer_and_connection_close_are_sent_whole() -> None:
    async with _serving(_json_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closed
        writer.close()
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest.endswith(b'\r\n\r\n{"status":"ok"}')


async def test_a_head_whose_body_is_not_ready_reaches_the_client_first() -> None:
    """A streamed response: the client has the head while the application still waits
    (for something only the client's reading of the head releases)."""
    head_seen = asyncio.Event()

    async def streaming(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await asyncio.wait_for(head_seen.wait(), 5)
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    async with _serving(streaming) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        head_seen.set()
        chunk = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert chunk == b"4\r\nlate\r\n0\r\n\r\n"


class _Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, data: Any) -> None:
        self.writes.append(b"".join(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("close_first", [False, True])
async def test_head_and_body_go_in_one_write_and_close_flushes_a_held_head(
    close_first: bool,
) -> None:
    recording = _Recording()
    transport = HeadWithBodyTransport(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    transport.write(head)
    assert recording.writes == []
    if close_first:
        transport.close()
        assert recording.writes == [head]
        assert recording.closed
        return
    transport.write(b"{}")
    assert recording.writes == [head + b"{}"]
    await asyncio.sleep(0)  # the end-of-iteration flush finds nothing held
    assert recording.writes == [head + b"{}"]
