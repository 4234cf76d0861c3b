"""Versioned per-tenant data keys (issue 19 item 12): rotation, re-seal to the newest version, the
minimum decryption version, and the per-version encryption limit with automatic rotation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from typer.testing import CliRunner
from vault_harness import TENANT, SandboxServer, VaultHarness, running_vault, vault_settings

from grantline.cli.main import app as cli
from grantline.contract import vault as contract
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.vault.domain import sealed_key_id

SEALED = ("access_token", "refresh_token", "id_token", "api_key")


async def _key_ids(vault: VaultHarness, connection_id: str) -> set[str]:
    """The data key ids the connection's sealed columns name."""
    [row] = await vault.sql(
        f"SELECT {', '.join(SEALED)} FROM vault.connections WHERE id = :id", id=connection_id
    )
    return {sealed_key_id(bytes(value)) for value in row if value is not None}


async def _versions(vault: VaultHarness, tenant: str = TENANT) -> list[Any]:
    return await vault.sql(
        "SELECT version, data_key_id, encryptions FROM vault.data_keys WHERE tenant_id = :t ORDER BY version",
        t=tenant,
    )


def _keys_cli(*args: str, keyring_file: Path, database_url: str) -> Any:
    options = ["--database-url", database_url]
    if args[0] in {"rotate-data-key", "reseal"}:
        options += ["--keyring-file", str(keyring_file)]
    return CliRunner().invoke(cli, ["keys", *args, *options])


async def test_a_rotation_seals_new_values_with_the_newest_version_and_old_ones_keep_opening(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    await vault.put_app("sandbox")
    await vault.put_app("sandbox", tenant="tenant-b")
    alice = await vault.connect("sandbox", user="alice")
    [v1] = await _versions(vault)
    assert await _key_ids(vault, alice.connection_id) == {v1.data_key_id}

    rotated = await asyncio.to_thread(
        _keys_cli, "rotate-data-key", "--tenant", TENANT, keyring_file=keyring_file, database_url=database_url
    )
    assert rotated.exit_code == 0, rotated.output
    assert f"{TENANT}: data key version 2 now seals" in rotated.output
    v1_after, v2 = await _versions(vault)
    assert (v1_after.version, v2.version) == (1, 2)
    # Another tenant's keys are untouched by a one-tenant rotation.
    assert [row.version for row in await _versions(vault, "tenant-b")] == [1]

    bob = await vault.connect("sandbox", user="bob", subject="bob")
    assert await _key_ids(vault, bob.connection_id) == {v2.data_key_id}
    assert await _key_ids(vault, alice.connection_id) == {v1.data_key_id}
    assert isinstance(await vault.resolve("sandbox", user="alice"), contract.ResolveReply)
    assert isinstance(await vault.resolve("sandbox", user="bob"), contract.ResolveReply)

    # A refresh re-seals alice's tokens under the newest version.
    await vault.expire(alice.connection_id)
    assert isinstance(await vault.resolve("sandbox", user="alice"), contract.ResolveReply)
    assert await _key_ids(vault, alice.connection_id) == {v2.data_key_id}

    every = await asyncio.to_thread(
        _keys_cli, "rotate-data-key", "--all", keyring_file=keyring_file, database_url=database_url
    )
    assert every.exit_code == 0 and "rotated 2 tenant(s)" in every.output, every.output
    neither = await asyncio.to_thread(
        _keys_cli, "rotate-data-key", keyring_file=keyring_file, database_url=database_url
    )
    assert neither.exit_code == 2


async def test_the_minimum_decryption_version_waits_for_the_reseal_unless_forced(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    await vault.put_app("sandbox")
    alice = await vault.connect("sandbox", user="alice")
    await asyncio.to_thread(
        _keys_cli, "rotate-data-key", "--tenant", TENANT, keyring_file=keyring_file, database_url=database_url
    )

    def set_min(version: int, *extra: str) -> Any:
        return _keys_cli(
            "set-min-decryption-version",
            str(version),
            "--tenant",
            TENANT,
            *extra,
            keyring_file=keyring_file,
            database_url=database_url,
        )

    refused = await asyncio.to_thread(set_min, 2)
    assert refused.exit_code == 1
    assert "sealed value(s)" in refused.output and "grantline keys reseal" in refused.output
    assert (await asyncio.to_thread(set_min, 9)).exit_code == 1  # no such version
    assert await vault.sql("SELECT * FROM vault.data_key_policies") == []

    resealed = await asyncio.to_thread(
        _keys_cli, "reseal", keyring_file=keyring_file, database_url=database_url
    )
    assert resealed.exit_code == 0, resealed.output
    [_, v2] = await _versions(vault)
    assert await _key_ids(vault, alice.connection_id) == {v2.data_key_id}
    [(app_secret,)] = await vault.sql("SELECT client_secret FROM vault.provider_apps")
    assert sealed_key_id(bytes(app_secret)) == v2.data_key_id
    usage = await asyncio.to_thread(
        _keys_cli, "data-keys", keyring_file=keyring_file, database_url=database_url
    )
    assert f"{TENANT} v1 " in usage.output and "0 sealed value(s)" in usage.output, usage.output

    accepted = await asyncio.to_thread(set_min, 2)
    assert accepted.exit_code == 0, accepted.output
    token = await vault.token("sandbox", user="alice")

    # Forced past values still under version 2: they are refused, saying why, never with a secret.
    await asyncio.to_thread(
        _keys_cli, "rotate-data-key", "--tenant", TENANT, keyring_file=keyring_file, database_url=database_url
    )
    forced = await asyncio.to_thread(set_min, 3, "--force")
    assert forced.exit_code == 0 and "no longer open" in forced.output, forced.output
    reply = await vault.resolve("sandbox", user="alice")
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.REAUTH_REQUIRED
    assert "data key version 2" in reply.error.message and "minimum decryption version" in reply.error.message
    assert token not in reply.model_dump_json()
    # Lowering it again (as Vault transit allows) makes them readable again.
    assert (await asyncio.to_thread(set_min, 2)).exit_code == 0
    assert await vault.token("sandbox", user="alice") == token


async def test_the_encryption_limit_rotates_the_key_and_no_version_passes_it(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> None:
    limit = 16
    settings = vault_settings(
        nats_url, database_url, sandbox.url, keyring_file, data_key_max_encryptions=limit
    )
    async with running_vault(settings, sandbox) as vault:
        await vault.put_app("sandbox")  # 2 seals counted (client secret, webhook secret)
        connections = await asyncio.gather(
            *(vault.connect("sandbox", user=f"user{n}", subject=f"user{n}") for n in range(12))
        )
        versions = await _versions(vault)
        # 2 + 12 * 3 = 38 seals counted: at least three versions, none past the limit.
        assert len(versions) >= 3
        assert [row.version for row in versions] == list(range(1, len(versions) + 1))
        assert all(row.encryptions <= limit for row in versions)
        assert sum(row.encryptions for row in versions) == 2 + 12 * 3
        for n, connection in enumerate(connections):
            assert len(await _key_ids(vault, connection.connection_id)) == 1
            assert isinstance(await vault.resolve("sandbox", user=f"user{n}"), contract.ResolveReply)
