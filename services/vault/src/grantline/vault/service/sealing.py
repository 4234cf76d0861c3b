"""Sealing a connection's tokens and a provider app's secrets into their columns, and opening them.

Every context binds the row's owner and provider besides tenant, row and field: build it from the
row as stored (or, for a new row, from the values being inserted), never from what a caller claims.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from grantline.providers.token_response import TokenSet
from grantline.vault.domain import DataKey, SealContext, SecretField, open_sealed, seal


def connection_context(owned: Any, connection_id: str, field: SecretField) -> SealContext:
    """The context of a connection's sealed column.

    `owned` carries the connection's `tenant_id`, `owner` and `provider`: its row, or the request
    that creates the row.
    """
    return SealContext.for_connection(
        owned.tenant_id, connection_id, owner=owned.owner, provider=owned.provider, field=field
    )


def connection_row_context(row: Any, field: SecretField) -> SealContext:
    """The context of one sealed column of a connection row."""
    return connection_context(row, row.id, field)


def seal_value(key: DataKey, context: SealContext, value: SecretStr | None) -> bytes | None:
    """One sealed column value (None stays None)."""
    if value is None:
        return None
    return seal(key, context=context, plaintext=value.get_secret_value())


def seal_tokens(key: DataKey, context: SealContext, tokens: TokenSet) -> dict[str, bytes | None]:
    """The sealed token columns of a connection for a token set (`context`'s field is replaced)."""
    return {
        "access_token": seal_value(key, context.with_field(SecretField.ACCESS_TOKEN), tokens.access_token),
        "refresh_token": seal_value(key, context.with_field(SecretField.REFRESH_TOKEN), tokens.refresh_token),
        "id_token": seal_value(key, context.with_field(SecretField.ID_TOKEN), tokens.id_token),
    }


def open_value(key: DataKey, context: SealContext, sealed: Any, *, accept_unbound: bool) -> SecretStr | None:
    """Open one sealed column (None stays None); `accept_unbound` from `require_bound_seals`."""
    if sealed is None:
        return None
    return SecretStr(open_sealed(key, context=context, sealed=bytes(sealed), accept_unbound=accept_unbound))
