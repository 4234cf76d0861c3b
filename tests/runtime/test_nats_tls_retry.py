"""A TLS handshake that fails once must not stop a service, or an app runner, from ever reaching NATS.

Under load a client may send its ClientHello after nats-server's ``handshake_first`` fallback delay; the
server then speaks plaintext INFO and the handshake fails. nats-py 2.16 used to wait forever after such a
failure (grantline.nats_fixes.tls_handshake says why): CI saw satisfaction never become ready. A NATS server
that stops mid-handshake does the same to a runner. The server here is real NATS behind a door that
plays that fallback on the first connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fixtures.infra import TlsNats
from nats.aio.transport import TcpTransport

from grantline.runner import RunnerClient
from grantline.runtime.nats.connection import connect_nats
from grantline.runtime.settings import ServiceSettings

_FALLBACK_INFO = b'INFO {"server_id":"late-client-fallback","tls_required":true,"max_payload":1048576}\r\n'


@contextlib.asynccontextmanager
async def _late_fallback_door(server_url: str) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP door to ``server_url``: the first connection gets the plaintext fallback, later ones NATS."""
    host, port = server_url.removeprefix("tls://").rsplit(":", 1)
    accepted: list[int] = []

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted) + 1)
        if len(accepted) == 1:
            await reader.read(1)  # the client's (late) ClientHello has arrived...
            writer.write(_FALLBACK_INFO)  # ...but the server already gave up waiting for it
            await writer.drain()
            await reader.read()  # until the client hangs up
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    door = await asyncio.start_server(handle, "127.0.0.1", 0)
    door_port = door.sockets[0].getsockname()[1]
    try:
        yield f"tls://127.0.0.1:{door_port}", accepted
    finally:
        door.close()


def _settings(tls_nats: TlsNats, url: str, **values: Any) -> ServiceSettings:
    return ServiceSettings(**{**tls_nats.settings(), "nats_url": url, **values})


async def test_a_service_connects_after_a_failed_tls_handshake(tls_nats: TlsNats) -> None:
    async with _late_fallback_door(tls_nats.url) as (url, accepted):
        nc = await asyncio.wait_for(connect_nats(_settings(tls_nats, url, service_name="late-tls")), 30)
        try:
            assert nc.is_connected
            assert len(accepted) >= 2, "the first attempt met the plaintext fallback and was retried"
            await nc.publish("late.tls.works", b"")
            await nc.flush(timeout=5)
        finally:
            await nc.close()


async def test_a_runner_connects_after_a_failed_tls_handshake(
    tls_nats: TlsNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The services of this test process installed the fix already: take it out again, so that what is
    # tested is that the SDK installs it itself (an app runner's process has no service in it).
    installed = TcpTransport.connect_tls
    monkeypatch.setattr(TcpTransport, "connect_tls", getattr(installed, "__wrapped__", installed))
    async with _late_fallback_door(tls_nats.url) as (url, accepted):
        runner = await asyncio.wait_for(
            RunnerClient.connect(url, "rnr_late_tls", "secret", **tls_nats.connect_options()), 30
        )
        try:
            assert len(accepted) >= 2
            await runner._nc.flush(timeout=5)
        finally:
            await runner.close()
