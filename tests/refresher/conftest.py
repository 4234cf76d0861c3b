"""Fixtures of the refresher tests: the sandbox provider over HTTP, and the vault.refresh stand-in."""

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from nats.aio.client import Client
from refresher_harness import SandboxServer, VaultStandIn


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.reset()
    return sandbox_server


@pytest_asyncio.fixture(loop_scope="session")
async def vault(nats_client: Client, sandbox: SandboxServer) -> AsyncIterator[VaultStandIn]:
    stand_in = VaultStandIn(nats_client, sandbox=sandbox)
    await stand_in.start()
    yield stand_in
    stand_in.answering.set()
    await stand_in.stop()
