"""The script channel on real redis-servers: replies in order, timeouts, loss, AUTH, TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import signal
import time
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cortiware.kv import KV, KVConfig
from cortiware.kv.scripts import LuaScript, ReplyLostError, ScriptChannel
from tests.support.servers import free_port, redis_server

ECHO = LuaScript("return {KEYS[1], ARGV[1]}")
SET = LuaScript("return redis.call('SET', KEYS[1], ARGV[1])")
FAILS = LuaScript("return redis.error_reply('ERR nope')")


def _channel(url: str, timeout: float = 0.25) -> KV:
    return KV.from_url(url, KVConfig(connect_timeout=timeout, command_timeout=timeout))


async def _evalsha(kv: KV, script: LuaScript, key: str, arg: str) -> object:
    return await kv.evalsha(script, [key], [arg])


async def test_concurrent_calls_each_get_their_own_reply(redis_url: str, redis_prefix: str) -> None:
    """500 concurrent calls on the one connection each receive the reply to their request."""
    kv = _channel(redis_url)
    try:
        keys = [f"{redis_prefix}echo:{i}" for i in range(500)]
        replies = await asyncio.gather(*(_evalsha(kv, ECHO, k, str(i)) for i, k in enumerate(keys)))
        late = await _evalsha(kv, ECHO, keys[0], "after")
    finally:
        await kv.aclose()
    assert replies == [[k.encode(), str(i).encode()] for i, k in enumerate(keys)]
    assert late == [keys[0].encode(), b"after"]


async def test_an_error_reply_raises_and_the_connection_stays_usable(
    redis_url: str, redis_prefix: str
) -> None:
    """A script's error reaches its caller as ResponseError; the next call still works."""
    kv = _channel(redis_url)
    try:
        with pytest.raises(ResponseError, match="nope"):
            await _evalsha(kv, FAILS, f"{redis_prefix}x", "1")
        assert await _evalsha(kv, ECHO, f"{redis_prefix}x", "2") == [
            f"{redis_prefix}x".encode(),
            b"2",
        ]
    finally:
        await kv.aclose()


async def test_a_flushed_script_is_loaded_again(tmp_path: Path) -> None:
    """After SCRIPT FLUSH (or a restart) the NOSCRIPT reply loads the script and retries."""
    script = LuaScript(f"return 'fresh-{os.getpid()}-{time.monotonic_ns()}'")
    with redis_server(tmp_path) as server:
        kv = _channel(server.url)
        admin = Redis.from_url(server.url)
        try:
            first = await kv.evalsha(script, [], [])
            await admin.script_flush()
            second = await kv.evalsha(script, [], [])
            loaded = await admin.script_exists(script.sha)
        finally:
            await kv.aclose()
            await admin.aclose()
    assert first == second == script.lua.split("'")[1].encode()
    assert loaded == [True]


async def test_a_server_that_stops_answering_times_out_and_the_next_call_reconnects(
    tmp_path: Path,
) -> None:
    """SIGSTOPped Redis: the pending call fails as a timeout (unsure) within about the
    command timeout; once it runs again, the next call works on a fresh connection."""
    with redis_server(tmp_path) as server:
        kv = _channel(server.url, timeout=0.2)
        assert server.process is not None
        try:
            await _evalsha(kv, ECHO, "k", "before")
            server.process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            try:
                with pytest.raises(RedisTimeoutError):
                    await _evalsha(kv, ECHO, "k", "stopped")
                waited = time.monotonic() - started
            finally:
                server.process.send_signal(signal.SIGCONT)
            after = await _evalsha(kv, ECHO, "k", "after")
        finally:
            await kv.aclose()
    assert 0.15 <= waited < 1.0
    assert after == [b"k", b"after"]


async def test_a_killed_server_fails_calls_as_connection_errors_then_recovers(
    tmp_path: Path,
) -> None:
    """Redis killed: calls fail at once with ConnectionError (nothing ran, not "unsure");
    the same server started again on its port serves the next call."""
    with redis_server(tmp_path) as server:
        kv = _channel(server.url)
        try:
            await _evalsha(kv, ECHO, "k", "before")
            server.kill()
            started = time.monotonic()
            with pytest.raises(ConnectionError):
                await _evalsha(kv, ECHO, "k", "dead")
            with pytest.raises(ConnectionError):
                await _evalsha(kv, ECHO, "k", "still dead")
            failed_within = time.monotonic() - started
            server.start()
            after = await _evalsha(kv, ECHO, "k", "after")
        finally:
            await kv.aclose()
    assert failed_within < 0.5
    assert after == [b"k", b"after"]


async def test_an_unanswering_listener_is_a_timeout_per_call_not_a_hang() -> None:
    """A peer that accepts and never replies: each call fails after the command timeout,
    and each retry opens a new connection (the stuck one is dropped)."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    port = free_port()
    listener = await asyncio.start_server(swallow, "127.0.0.1", port)
    channel = ScriptChannel(("127.0.0.1", port), connect_timeout=0.2, command_timeout=0.2)
    try:
        for _ in range(2):
            with pytest.raises(RedisTimeoutError):
                await channel.evalsha(ECHO, ["k"], ["v"])
    finally:
        channel.close()
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()
    assert len(accepted) == 2


async def test_auth_and_database_come_from_the_url(tmp_path: Path) -> None:
    """Password (and ACL user) and database number of REDIS_URL apply to the channel;
    a wrong password is an AuthenticationError, not a hang or a silent fallback."""
    with redis_server(tmp_path, ["--requirepass", "s3cret/pw"]) as server:
        base = f"127.0.0.1:{server.port}"
        kv = _channel(f"redis://:s3cret%2Fpw@{base}/3")
        user_kv = _channel(f"redis://default:s3cret%2Fpw@{base}/3")
        wrong = _channel(f"redis://:wrong@{base}/3")
        admin = Redis.from_url(f"redis://:s3cret%2Fpw@{base}/3")
        try:
            await _evalsha(kv, SET, "in-db-3", "yes")
            await _evalsha(user_kv, SET, "acl-user", "yes")
            with pytest.raises(AuthenticationError):
                await _evalsha(wrong, SET, "never", "no")
            stored = await admin.mget("in-db-3", "acl-user", "never")
            in_db_0 = await admin.execute_command("SELECT", 0) and await admin.exists("in-db-3")
        finally:
            for client in (kv, user_kv, wrong):
                await client.aclose()
            await admin.aclose()
    assert stored == [b"yes", b"yes", None]
    assert in_db_0 == 0


async def test_a_unix_socket_url_is_served(tmp_path: Path) -> None:
    """`unix:///path?db=N` reaches Redis over its socket, in that database."""
    sock = tmp_path / "redis.sock"
    with redis_server(tmp_path, ["--unixsocket", str(sock), "--unixsocketperm", "700"]) as server:
        kv = _channel(f"unix://{sock}?db=2")
        admin = Redis.from_url(f"redis://127.0.0.1:{server.port}/2")
        try:
            await _evalsha(kv, SET, "over-socket", "yes")
            stored = await admin.get("over-socket")
        finally:
            await kv.aclose()
            await admin.aclose()
    assert stored == b"yes"


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(alt, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "server.pem", directory / "server.key", directory / "ca.pem")
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


async def test_rediss_verifies_the_server_certificate(tmp_path: Path) -> None:
    """`rediss://` (what the infra composes for ElastiCache) speaks TLS with redis-py's
    context: trusted with the CA given, refused as a connection error without it."""
    tls = _certificates(tmp_path)
    with redis_server(tmp_path, ["--requirepass", "tok"], tls=tls) as server:
        trusted = _channel(f"rediss://:tok@127.0.0.1:{server.port}/0?ssl_ca_certs={tls[2]}")
        untrusted = _channel(f"rediss://:tok@127.0.0.1:{server.port}/0")
        try:
            reply = await _evalsha(trusted, ECHO, "k", "over tls")
            with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await _evalsha(untrusted, ECHO, "k", "never")
        finally:
            await trusted.aclose()
            await untrusted.aclose()
    assert reply == [b"k", b"over tls"]


def test_the_channel_runs_on_uvloop(redis_url: str, redis_prefix: str) -> None:
    """uvicorn serves on uvloop, whose transports are not asyncio's classes: calls work there."""

    async def calls() -> list[object]:
        kv = _channel(redis_url)
        try:
            return list(
                await asyncio.gather(
                    *(_evalsha(kv, ECHO, f"{redis_prefix}uv", str(i)) for i in range(20))
                )
            )
        finally:
            await kv.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        replies = runner.run(calls())
    assert replies == [[f"{redis_prefix}uv".encode(), str(i).encode()] for i in range(20)]


async def test_a_connection_lost_mid_script_is_unsure_not_a_plain_connection_error(
    tmp_path: Path,
) -> None:
    """Redis killed while a written script runs: the caller gets ReplyLostError, a timeout
    as well as a connection error, so KV treats it as "may have run" (no memory rerun)."""
    busy = LuaScript("local i = 0 while i < 400000000 do i = i + 1 end return i")
    with redis_server(tmp_path) as server:
        kv = KV.from_url(server.url, KVConfig(connect_timeout=0.5, command_timeout=10))
        try:
            await _evalsha(kv, ECHO, "k", "warm")
            pending = asyncio.ensure_future(kv.evalsha(busy, [], []))
            await asyncio.sleep(0.3)
            server.kill()
            with pytest.raises(ReplyLostError) as lost:
                await pending
        finally:
            await kv.aclose()
    assert isinstance(lost.value, RedisTimeoutError)
    assert isinstance(lost.value, ConnectionError)


async def test_readonly_after_a_failover_drops_the_connection(tmp_path: Path) -> None:
    """A node demoted to replica answers READONLY: the caller gets ReadOnlyError and the
    channel reconnects for the next call instead of writing to that node forever."""
    primary_dir, replica_dir = tmp_path / "primary", tmp_path / "replica"
    primary_dir.mkdir()
    replica_dir.mkdir()
    with redis_server(primary_dir) as primary, redis_server(replica_dir) as node:
        kv = _channel(node.url)
        admin = Redis.from_url(node.url)
        try:
            await _evalsha(kv, SET, "k", "as primary")
            connections = (await admin.info("stats"))["total_connections_received"]
            await admin.execute_command("REPLICAOF", "127.0.0.1", primary.port)
            with pytest.raises(ReadOnlyError):
                await _evalsha(kv, SET, "k", "as replica")
            await admin.execute_command("REPLICAOF", "NO", "ONE")
            after = await _evalsha(kv, SET, "k", "promoted again")
            reconnected = (await admin.info("stats"))["total_connections_received"] - connections
        finally:
            await kv.aclose()
            await admin.aclose()
    assert after == b"OK"
    assert reconnected == 1


async def test_the_timeout_counts_from_the_write_not_from_a_stalled_loop(
    redis_url: str, redis_prefix: str
) -> None:
    """Calls queued while the event loop is blocked longer than the command timeout are not
    failed as timeouts once written: Redis had no chance to answer them yet."""
    kv = _channel(redis_url, timeout=0.25)
    try:
        await _evalsha(kv, ECHO, f"{redis_prefix}s", "warm")
        calls = [
            asyncio.ensure_future(_evalsha(kv, ECHO, f"{redis_prefix}s", str(i))) for i in range(5)
        ]
        await asyncio.sleep(0)  # the first is written, the rest wait for the next loop tick
        time.sleep(0.4)  # noqa: ASYNC251 - blocks the loop on purpose (a GC pause, a starved CPU)
        replies = await asyncio.gather(*calls)
    finally:
        await kv.aclose()
    assert replies == [[f"{redis_prefix}s".encode(), str(i).encode()] for i in range(5)]


async def test_a_connect_abandoned_by_its_caller_does_not_poison_later_reconnects(
    tmp_path: Path,
) -> None:
    """The caller that started the connection is cancelled mid-connect; later the server
    drops the connection: the next call reconnects instead of reusing the old attempt."""
    with redis_server(tmp_path) as server:
        kv = _channel(server.url)
        admin = Redis.from_url(server.url)
        try:
            first = asyncio.ensure_future(_evalsha(kv, ECHO, "k", "1"))
            await asyncio.sleep(0)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            await asyncio.sleep(0.1)  # the connection attempt ends meanwhile
            second = await _evalsha(kv, ECHO, "k", "2")
            await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            await asyncio.sleep(0.1)  # the channel sees its connection closed
            third = await _evalsha(kv, ECHO, "k", "3")
        finally:
            await kv.aclose()
            await admin.aclose()
    assert (second, third) == ([b"k", b"2"], [b"k", b"3"])


async def test_closing_during_a_connect_leaves_no_connection_behind(tmp_path: Path) -> None:
    """`close()` while a connection is being made: the call fails as a connection error and
    the new connection is dropped, not kept open past shutdown."""
    with redis_server(tmp_path) as server:
        channel = ScriptChannel(("127.0.0.1", server.port))
        admin = Redis.from_url(server.url)
        try:
            call = asyncio.ensure_future(channel.evalsha(ECHO, ["k"], ["v"]))
            await asyncio.sleep(0)
            channel.close()
            with pytest.raises(ConnectionError):
                await call
            await asyncio.sleep(0.1)
            clients = (await admin.info("clients"))["connected_clients"]
        finally:
            await admin.aclose()
    assert clients == 1  # the admin connection only
