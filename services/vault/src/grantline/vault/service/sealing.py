"""Sealing a grant's tokens into connection columns, and opening them again."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from grantline.providers.token_response import TokenSet
from grantline.vault.domain import DataKey, SealContext, SecretField, open_sealed, seal


def seal_value(
    key: DataKey, tenant_id: str, connection_id: str, field: SecretField, value: SecretStr | None
) -> bytes | None:
    """One sealed column value (None stays None)."""
    if value is None:
        return None
    context = SealContext.for_connection(tenant_id, connection_id, field)
    return seal(key, context=context, plaintext=value.get_secret_value())


def seal_tokens(
    key: DataKey, tenant_id: str, connection_id: str, tokens: TokenSet
) -> dict[str, bytes | None]:
    """The sealed token columns of a connection for a token set."""
    return {
        "access_token": seal_value(
            key, tenant_id, connection_id, SecretField.ACCESS_TOKEN, tokens.access_token
        ),
        "refresh_token": seal_value(
            key, tenant_id, connection_id, SecretField.REFRESH_TOKEN, tokens.refresh_token
        ),
        "id_token": seal_value(key, tenant_id, connection_id, SecretField.ID_TOKEN, tokens.id_token),
    }


def open_value(
    key: DataKey, tenant_id: str, connection_id: str, field: SecretField, sealed: Any
) -> SecretStr | None:
    """Open one sealed column of a connection (None stays None)."""
    if sealed is None:
        return None
    context = SealContext.for_connection(tenant_id, connection_id, field)
    return SecretStr(open_sealed(key, context=context, sealed=bytes(sealed)))


def seal_app_secret(key: DataKey, tenant_id: str, app_id: str, field: SecretField, value: SecretStr) -> bytes:
    """A provider app's client or webhook secret, sealed."""
    context = SealContext.for_provider_app(tenant_id, app_id, field)
    return seal(key, context=context, plaintext=value.get_secret_value())


def open_app_secret(
    key: DataKey, tenant_id: str, app_id: str, field: SecretField, sealed: Any
) -> SecretStr | None:
    """Open a provider app's sealed secret (None stays None)."""
    if sealed is None:
        return None
    context = SealContext.for_provider_app(tenant_id, app_id, field)
    return SecretStr(open_sealed(key, context=context, sealed=bytes(sealed)))
