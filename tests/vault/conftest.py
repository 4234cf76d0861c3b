"""Fixtures for vault integration tests: the sandbox provider on a real port and a running vault."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from vault_harness import SandboxServer, VaultHarness, running_vault, vault_settings, write_keyring

from grantline.devstack.embedded import free_port


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    return write_keyring(tmp_path / "master-keyring.json")


@pytest_asyncio.fixture(loop_scope="session")
async def vault(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> AsyncIterator[VaultHarness]:
    settings = vault_settings(nats_url, database_url, sandbox.url, keyring_file)
    async with running_vault(settings, sandbox) as harness:
        yield harness
