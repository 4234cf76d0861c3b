"""Fixtures for vault integration tests: the sandbox provider on a real port and a running vault."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from vault_harness import SandboxServer, VaultHarness, write_keyring

from grantline.common.embedded import free_port
from grantline.vault.app import create_runtime
from grantline.vault.settings import VaultSettings


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


def vault_settings(
    nats_url: str, database_url: str, sandbox_url: str, keyring_file: Path, **overrides: object
) -> VaultSettings:
    values: dict[str, object] = {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 5,
        "allow_private_provider_urls": True,
        "sandbox_url": sandbox_url,
        "master_keyring_file": keyring_file,
        "provider_max_attempts": 2,
        "provider_retry_base_seconds": 0.01,
        "audit_flush_interval_seconds": 0.05,
        **overrides,
    }
    return VaultSettings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def vault(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> AsyncIterator[VaultHarness]:
    runtime = create_runtime(vault_settings(nats_url, database_url, sandbox.url, keyring_file))
    await runtime.start()
    try:
        yield VaultHarness(runtime, sandbox)
    finally:
        await runtime.stop()
