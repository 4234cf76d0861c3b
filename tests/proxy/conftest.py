"""Proxy tests: the sandbox on a real port, a running vault (driven as the gateway does) and the proxy.

The vault's harness lives beside the vault's tests and is shared from there, not copied.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

_VAULT_TESTS = str(Path(__file__).resolve().parents[1] / "vault")
if _VAULT_TESTS not in sys.path:
    sys.path.insert(0, _VAULT_TESTS)

from proxy_harness import ProxyHarness, proxy_settings, running_proxy  # noqa: E402
from vault_harness import (  # noqa: E402
    SandboxServer,
    VaultHarness,
    running_vault,
    vault_settings,
    write_keyring,
)

from grantline.devstack.embedded import free_port  # noqa: E402


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


@pytest_asyncio.fixture(loop_scope="session")
async def vault(
    nats_url: str, database_url: str, sandbox: SandboxServer, tmp_path: Path
) -> AsyncIterator[VaultHarness]:
    settings = vault_settings(
        nats_url,
        database_url,
        sandbox.url,
        write_keyring(tmp_path / "keyring.json"),
        report_refresh_min_interval_seconds=0,
    )
    async with running_vault(settings, sandbox) as harness:
        yield harness


@pytest_asyncio.fixture(loop_scope="session")
async def proxy(nats_url: str, vault: VaultHarness, sandbox: SandboxServer) -> AsyncIterator[ProxyHarness]:
    async with running_proxy(proxy_settings(nats_url, sandbox.url)) as harness:
        yield harness
