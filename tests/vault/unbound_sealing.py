"""Values in the unbound sealed format (version 1), as vaults wrote them before owner binding.

Written here from the format's definition, not with the vault's code, so the tests also check that
the vault still reads what older vaults wrote.
"""

from __future__ import annotations

import os
from typing import Any

from grantline.vault.domain import DataKey, SealContext, SecretField, open_sealed
from grantline.vault.domain.data_key_versions import TenantDataKeys
from grantline.vault.domain.envelope import encode_aad_parts


def seal_unbound(key: DataKey, context: SealContext, plaintext: str) -> bytes:
    """`plaintext` sealed as a version 1 vault did: bound to tenant, row and field only."""
    header = bytes((1, len(key.key_id))) + key.key_id.encode("ascii")
    aad = b"grantline/sealed/v1" + encode_aad_parts(
        context.tenant_id, context.row_kind.value, context.row_id, context.field.value
    )
    nonce = os.urandom(12)
    return header + nonce + key.aead.encrypt(nonce, plaintext.encode(), header + aad)


# Sealed columns and the field each is sealed as.
CONNECTION_COLUMNS = {
    "access_token": SecretField.ACCESS_TOKEN,
    "refresh_token": SecretField.REFRESH_TOKEN,
    "id_token": SecretField.ID_TOKEN,
    "api_key": SecretField.API_KEY,
}
APP_COLUMNS = {"client_secret": SecretField.CLIENT_SECRET, "webhook_secret": SecretField.API_KEY}


async def rewrite_unbound(vault: Any) -> int:
    """Rewrite every sealed value of a running vault's database as a version 1 vault had written it.

    Returns how many rows were rewritten. Only for setting up migration tests.
    """
    rewritten = 0
    keys: dict[str, TenantDataKeys] = {}
    tables: list[tuple[str, dict[str, SecretField | None], str]] = [
        ("connections", CONNECTION_COLUMNS, "owner, provider"),
        ("provider_apps", APP_COLUMNS, "provider"),
        # A revocation still to make holds its connection's token, sealed as that connection had it.
        ("pending_revocations", {"sealed_token": None}, "connection_id, owner, provider, field"),
    ]
    for table, columns, binding in tables:
        rows = await vault.sql(f"SELECT id, tenant_id, {binding}, {', '.join(columns)} FROM vault.{table}")
        for row in rows:
            if row.tenant_id not in keys:
                async with vault.runtime.driver_transaction() as conn:
                    keys[row.tenant_id] = await vault.ctx.keys.load(conn, row.tenant_id)
            key = keys[row.tenant_id]
            values: dict[str, bytes | None] = {}
            for column, field in columns.items():
                sealed = getattr(row, column)
                if sealed is None:
                    values[column] = None
                    continue
                if table == "connections":
                    context = SealContext.for_connection(
                        row.tenant_id, row.id, owner=row.owner, provider=row.provider, field=field
                    )
                elif table == "pending_revocations":
                    context = SealContext.for_connection(
                        row.tenant_id,
                        row.connection_id,
                        owner=row.owner,
                        provider=row.provider,
                        field=SecretField(row.field),
                    )
                else:
                    assert field is not None
                    context = SealContext.for_provider_app(
                        row.tenant_id, row.id, provider=row.provider, field=field
                    )
                plaintext = open_sealed(key, context=context, sealed=bytes(sealed), accept_unbound=True)
                values[column] = seal_unbound(key.sealing_key(), context, plaintext)
            assignments = ", ".join(f"{column} = :{column}" for column in columns)
            await vault.sql(f"UPDATE vault.{table} SET {assignments} WHERE id = :id", id=row.id, **values)
            rewritten += 1
    return rewritten
