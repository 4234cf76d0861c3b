"""Envelope encryption in place: bound ciphertexts, and master rotation while tokens keep resolving."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from vault_harness import TENANT, VaultHarness

from grantline.cli.keys_commands import rotate_master, usage
from grantline.contract import vault as contract
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.vault.domain import (
    DecryptionError,
    KeyInUseError,
    SealContext,
    SecretField,
    load_keyring_file,
    remove_retired_key,
)
from grantline.vault.service.sealing import open_value


def _at(tenant: str, connection_id: str, field: SecretField, owner: str = "user:alice") -> SealContext:
    return SealContext.for_connection(tenant, connection_id, owner=owner, provider="sandbox", field=field)


async def test_a_ciphertext_moved_to_another_row_tenant_or_field_does_not_decrypt(
    vault: VaultHarness,
) -> None:
    await vault.put_app("sandbox")
    await vault.put_app("sandbox", tenant="tenant-b")
    first = await vault.connect("sandbox", user="alice")
    second = await vault.connect("sandbox", user="bob", subject="bob")
    other_tenant = await vault.connect("sandbox", user="alice", tenant="tenant-b")
    [(sealed,)] = await vault.sql(
        "SELECT access_token FROM vault.connections WHERE id = :id", id=first.connection_id
    )
    async with vault.runtime.driver_transaction() as conn:
        key_a = await vault.ctx.keys.load(conn, TENANT)
        key_b = await vault.ctx.keys.load(conn, "tenant-b")
    own = _at(TENANT, first.connection_id, SecretField.ACCESS_TOKEN)
    assert open_value(key_a, own, sealed, accept_unbound=False) is not None
    for key, context in [
        (key_a, _at(TENANT, second.connection_id, SecretField.ACCESS_TOKEN, "user:bob")),  # another row
        (key_a, _at(TENANT, first.connection_id, SecretField.REFRESH_TOKEN)),  # another field
        (key_a, _at("tenant-b", first.connection_id, SecretField.ACCESS_TOKEN)),  # another tenant, same key
        (
            key_b,
            _at("tenant-b", other_tenant.connection_id, SecretField.ACCESS_TOKEN),
        ),  # another tenant's key
        (key_a, _at(TENANT, first.connection_id, SecretField.ACCESS_TOKEN, "user:bob")),  # another owner
    ]:
        with pytest.raises(DecryptionError):
            open_value(key, context, sealed, accept_unbound=True)
    # Copied into bob's row in the database, alice's token is not handed to bob.
    await vault.sql(
        "UPDATE vault.connections SET access_token = :v WHERE id = :id", v=sealed, id=second.connection_id
    )
    reply = await vault.resolve("sandbox", user="bob")
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.INTERNAL


async def test_master_rotation_keeps_every_token_resolvable(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    tenants = ["tenant-a", "tenant-b", "tenant-c"]
    for tenant in tenants:
        await vault.put_app("sandbox", tenant=tenant)
        await vault.connect("sandbox", tenant=tenant)
    old_key = load_keyring_file(keyring_file).active_key_id
    failures: list[object] = []
    stop = asyncio.Event()

    async def keep_resolving() -> int:
        count = 0
        while not stop.is_set():
            for tenant in tenants:
                reply = await vault.resolve("sandbox", tenant=tenant)
                if not isinstance(reply, contract.ResolveReply):
                    failures.append(reply)
                count += 1
            vault.ctx.keys.cache.clear()  # force unwrapping, possibly under the new master key
        return count

    resolver = asyncio.ensure_future(keep_resolving())
    new_key, moved = await asyncio.to_thread(rotate_master, keyring_file, database_url)
    vault.ctx.keys.cache.clear()
    # A tenant created after the rotation gets a data key wrapped by the new master key.
    await vault.put_app("sandbox", tenant="tenant-d")
    stop.set()
    assert await resolver > 0
    assert failures == [] and moved == 3
    for tenant in tenants:
        assert isinstance(await vault.resolve("sandbox", tenant=tenant), contract.ResolveReply)
    keyring = load_keyring_file(keyring_file)
    counts = await asyncio.to_thread(usage, database_url, keyring)
    assert counts == {old_key: 0, new_key: 4}
    smaller = remove_retired_key(keyring, old_key, counts)
    assert old_key not in smaller
    with pytest.raises(KeyInUseError):
        remove_retired_key(keyring.with_new_active_key(), new_key, counts)
