"""What an eavesdropper on the network between a runner and NATS sees of a `vault.resolve` reply.

A TCP proxy in the test sits between the runner and the NATS server and records every byte in both
directions while the runner resolves a token the sandbox issued with a canary in it. Over TLS the
canary never crosses the wire in clear; without TLS it does (which proves the recording is real).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from fixtures.infra import TlsNats, free_port
from fixtures.run_grants import mint_grant
from vault_harness import TENANT, SandboxServer, VaultHarness, write_keyring

from grantline.runner import RunnerClient
from grantline.vault.app import create_runtime
from grantline.vault.settings import VaultSettings

CANARY = "CANARYwire7k"


class RecordingProxy:
    """Forwards loopback TCP connections to ``target`` and keeps every byte that passes, both ways."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.recorded = bytearray()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        for reader, writer in ((client_reader, server_writer), (server_reader, client_writer)):
            pipe = asyncio.create_task(self._pipe(reader, writer))
            self._pipes.add(pipe)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                self.recorded += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(free_port())
    server.start()
    server.reset()
    server.state.canary = CANARY
    yield server
    server.stop()


async def _running_vault(
    nats_settings: dict[str, Any], database_url: str, sandbox: SandboxServer, keyring: Path
) -> VaultHarness:
    settings = VaultSettings(
        **nats_settings,
        database_url=database_url,
        environment="test",
        database_pool_size=3,
        allow_private_provider_urls=True,
        sandbox_url=sandbox.url,
        master_keyring_file=keyring,
    )
    runtime = create_runtime(settings)
    await runtime.start()
    return VaultHarness(runtime, sandbox)


@pytest.mark.parametrize("transport", ["tls", "plaintext"])
async def test_a_resolved_token_crosses_the_network_only_encrypted(
    transport: str,
    request: pytest.FixtureRequest,
    database_url: str,
    sandbox: SandboxServer,
    tmp_path: Path,
) -> None:
    if transport == "tls":
        server: TlsNats = request.getfixturevalue("tls_nats")
        nats_settings: dict[str, Any] = server.settings()
        url, client_tls = server.url, server.connect_options()
    else:
        url = request.getfixturevalue("nats_url")
        nats_settings, client_tls = {"nats_url": url}, {}
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    keyring = write_keyring(tmp_path / "keyring.json")
    vault = await _running_vault(nats_settings, database_url, sandbox, keyring)
    try:
        await vault.put_app("sandbox")
        await vault.connect("sandbox", user="alice")
        async with RecordingProxy(host, int(port)) as proxy:
            scheme = url.split("://", 1)[0]
            nc = await nats.connect(f"{scheme}://127.0.0.1:{proxy.port}", connect_timeout=5, **client_tls)
            runner = RunnerClient(nc)
            try:
                grant = mint_grant(TENANT, "alice", ["sandbox"])
                reply = await runner.resolve(grant=grant, provider="sandbox")
            finally:
                await runner.close()
                await nc.close()
        token = reply.access_token.get_secret_value()
        assert CANARY in token  # the runner really received a canary token, through the proxy
        assert len(proxy.recorded) > 1000  # the proxy really saw the exchange
        if transport == "tls":
            assert CANARY.encode() not in proxy.recorded
            assert token.encode() not in proxy.recorded
            assert b"vault.resolve" not in proxy.recorded  # not even the subject is visible
        else:
            assert token.encode() in proxy.recorded
    finally:
        await vault.runtime.stop()
