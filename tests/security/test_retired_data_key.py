"""Retired data key versions (issue 19 item 12): old ciphertexts put back do not open.

The attacker holds an old copy of sealed rows (a database backup, a replica snapshot) and can write
the vault's tables, but holds no master key. After the tenant rotated its data key, re-sealed and
raised its minimum decryption version, writing the old ciphertext back must not make the vault hand
out the old token; and a value sealed under another tenant's key must not open under this tenant's,
even though its header names a real data key id. Real Postgres, NATS, vault and sandbox provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

# The vault's test harness (tests/ is on sys.path, see tests/conftest.py).
from vault.vault_harness import SandboxServer, VaultHarness, running_vault, vault_settings, write_keyring

from grantline.cli.main import app as cli
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.devstack.embedded import free_port

TENANT = "tenant-a"


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    return write_keyring(tmp_path / "keyring.json")


@pytest_asyncio.fixture(loop_scope="session")
async def vault(
    nats_url: str, database_url: str, sandbox_server: SandboxServer, keyring: Path
) -> AsyncIterator[VaultHarness]:
    sandbox_server.reset()
    settings = vault_settings(nats_url, database_url, sandbox_server.url, keyring)
    async with running_vault(settings, sandbox_server) as harness:
        yield harness


def _keys(database_url: str, keyring: Path, *args: str) -> None:
    options = ["--database-url", database_url]
    if args[0] in {"rotate-data-key", "reseal"}:
        options += ["--keyring-file", str(keyring)]
    result = CliRunner().invoke(cli, ["keys", *args, *options])
    assert result.exit_code == 0, result.output


async def test_an_old_ciphertext_written_back_after_retirement_is_refused(
    vault: VaultHarness, database_url: str, keyring: Path
) -> None:
    await vault.put_app("sandbox")
    alice = await vault.connect("sandbox", user="alice")
    token = await vault.token("sandbox", user="alice")
    [(backup,)] = await vault.sql(
        "SELECT access_token FROM vault.connections WHERE id = :id", id=alice.connection_id
    )

    await asyncio.to_thread(_keys, database_url, keyring, "rotate-data-key", "--tenant", TENANT)
    await asyncio.to_thread(_keys, database_url, keyring, "reseal")
    await asyncio.to_thread(
        _keys, database_url, keyring, "set-min-decryption-version", "2", "--tenant", TENANT
    )
    assert await vault.token("sandbox", user="alice") == token

    await vault.sql(
        "UPDATE vault.connections SET access_token = :v WHERE id = :id", v=backup, id=alice.connection_id
    )
    reply = await vault.resolve("sandbox", user="alice")
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.REAUTH_REQUIRED
    assert "data key version 1" in reply.error.message and "minimum decryption version" in reply.error.message
    assert token not in reply.model_dump_json()


async def test_a_value_sealed_under_another_tenants_key_does_not_open(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    await vault.put_app("sandbox", tenant="tenant-b")
    alice = await vault.connect("sandbox", user="alice")
    other = await vault.connect("sandbox", user="alice", tenant="tenant-b")
    token_b = await vault.token("sandbox", user="alice", tenant="tenant-b")
    await vault.sql(
        "UPDATE vault.connections SET access_token = (SELECT access_token FROM vault.connections"
        " WHERE id = :other) WHERE id = :id",
        other=other.connection_id,
        id=alice.connection_id,
    )
    reply = await vault.resolve("sandbox", user="alice")
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.INTERNAL
    assert token_b not in reply.model_dump_json()
