"""Attack 6 of issue 15: rebinding a sealed row in SQL must not hand its secret to someone else.

The attacker can write the vault's tables (a stolen database credential, a careless migration) but
holds no key. Moving alice's connection to another owner, or to another provider, must make the vault
refuse it: the sealed values are bound to owner and provider, so they no longer open. Real Postgres,
real NATS, the real vault, the sandbox provider on a real port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

# The vault's test harness (tests/ is on sys.path, see tests/conftest.py).
from vault.vault_harness import SandboxServer, VaultHarness, running_vault, vault_settings, write_keyring

from grantline.contract import vault as contract
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.devstack.embedded import free_port

TENANT = "tenant-a"


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def vault(
    nats_url: str, database_url: str, sandbox_server: SandboxServer, tmp_path: Path
) -> AsyncIterator[VaultHarness]:
    sandbox_server.reset()
    settings = vault_settings(
        nats_url, database_url, sandbox_server.url, write_keyring(tmp_path / "keyring.json")
    )
    async with running_vault(settings, sandbox_server) as harness:
        yield harness


def _refused_without_token(reply: object, token: str) -> None:
    assert isinstance(reply, ErrorReply), reply
    assert reply.error.code == ErrorCode.INTERNAL
    assert token not in reply.model_dump_json()


async def _move(vault: VaultHarness, connection_id: str, **columns: str) -> None:
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    await vault.sql(f"UPDATE vault.connections SET {assignments} WHERE id = :id", id=connection_id, **columns)


async def test_a_connection_moved_to_another_owner_is_refused(vault: VaultHarness) -> None:
    await vault.put_app("sandbox", fallback=True)
    alice = await vault.connect("sandbox", user="alice", subject="alice")
    token = await vault.token(user="alice")
    not_yet = await vault.resolve(user="mallory")
    assert isinstance(not_yet, ErrorReply) and not_yet.error.code == ErrorCode.NOT_CONNECTED

    await _move(vault, alice.connection_id, owner="user:mallory")
    _refused_without_token(await vault.resolve(user="mallory"), token)
    # The refresh path opens the same values: refused too, and the provider is not called.
    token_calls = len(vault.sandbox.requests_to("token"))
    refreshed = await vault.call(
        contract.SUBJECT_REFRESH,
        contract.RefreshRequest(tenant_id=TENANT, connection_id=alice.connection_id),
        contract.RefreshReply,
    )
    _refused_without_token(refreshed, token)
    assert len(vault.sandbox.requests_to("token")) == token_calls

    # Made the workspace's connection, it would serve every user through the fallback: refused.
    await _move(vault, alice.connection_id, owner="workspace")
    _refused_without_token(await vault.resolve(user="mallory"), token)

    # Put back, the row opens again: what refused it was the binding, not damage.
    await _move(vault, alice.connection_id, owner="user:alice")
    assert await vault.token(user="alice") == token


async def test_a_connection_moved_to_another_provider_is_refused(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    alice = await vault.connect("sandbox", user="alice", subject="alice")
    token = await vault.token(user="alice")

    # (A provider whose tokens expire, so that a refresh would call its token endpoint.)
    await _move(vault, alice.connection_id, provider="sandbox_rotating")
    _refused_without_token(await vault.resolve("sandbox_rotating", user="alice"), token)
    # Nor does a refresh send the sandbox app's client secret to the other provider's endpoint.
    refreshed = await vault.call(
        contract.SUBJECT_REFRESH,
        contract.RefreshRequest(tenant_id=TENANT, connection_id=alice.connection_id),
        contract.RefreshReply,
    )
    _refused_without_token(refreshed, token)
    assert vault.sandbox.requests_to("token", "rotating") == []

    await _move(vault, alice.connection_id, provider="sandbox")
    assert await vault.token(user="alice") == token
