"""Sealing a connection's tokens and a provider app's secrets into their columns, and opening them.

Every context binds the row's owner and provider besides tenant, row and field: build it from the
row as stored (or, for a new row, from the values being inserted), never from what a caller claims.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import SecretStr

from grantline.providers.token_response import ExternalAccount, TokenSet
from grantline.vault.adapters.provider_client import ClientCredentials
from grantline.vault.domain import SealContext, SecretField
from grantline.vault.domain.data_key_versions import TenantDataKeys


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


def seal_value(keys: TenantDataKeys, context: SealContext, value: SecretStr | None) -> bytes | None:
    """One sealed column value, under the tenant's newest data key (None stays None)."""
    if value is None:
        return None
    return keys.seal(context, value.get_secret_value())


# What `seal_tokens` may seal: the encryptions to reserve on the data key beforehand.
TOKEN_COLUMNS = 3


def seal_tokens(keys: TenantDataKeys, context: SealContext, tokens: TokenSet) -> dict[str, bytes | None]:
    """The sealed token columns of a connection for a token set (`context`'s field is replaced)."""
    fields = {
        "access_token": (SecretField.ACCESS_TOKEN, tokens.access_token),
        "refresh_token": (SecretField.REFRESH_TOKEN, tokens.refresh_token),
        "id_token": (SecretField.ID_TOKEN, tokens.id_token),
    }
    return {column: seal_value(keys, context.with_field(f), value) for column, (f, value) in fields.items()}


def open_value(
    keys: TenantDataKeys, context: SealContext, sealed: Any, *, accept_unbound: bool
) -> SecretStr | None:
    """Open one sealed column under whichever version sealed it (None stays None); `accept_unbound`
    from `require_bound_seals`."""
    if sealed is None:
        return None
    return SecretStr(keys.open(context, bytes(sealed), accept_unbound=accept_unbound))


_EMPTY = SecretStr("")


def opened_refresh_inputs(
    key: TenantDataKeys, app_key: TenantDataKeys | None, row: Any, *, accept_unbound: bool
) -> tuple[ClientCredentials, TokenSet]:
    """For a refresh: the app's client credentials and the connection's tokens, opened from the leased row.

    ``app_key`` opens the client secret: the tenant's keys, or an operator's platform app's own.
    """
    # The client secret is bound to its owner (the tenant, or the platform) and to the provider it is
    # sent to: this connection's.
    owner = row.app_owner or row.tenant_id
    app_secret = SealContext.for_provider_app(owner, row.app_id, provider=row.provider)
    sealed_secret = row.client_secret if app_key is not None else None
    client = ClientCredentials(
        client_id=row.client_id or "",
        client_secret=open_value(app_key or key, app_secret, sealed_secret, accept_unbound=accept_unbound)
        or _EMPTY,
        # The connection's own settings (its shop, its site) over the app's: a refresh goes where the
        # grant was made.
        settings={**(row.app_settings or {}), **(row.settings or {})},
    )
    sealed_at = partial(connection_row_context, row)
    previous = TokenSet(
        access_token=open_value(
            key, sealed_at(SecretField.ACCESS_TOKEN), row.access_token, accept_unbound=accept_unbound
        )
        or _EMPTY,
        refresh_token=open_value(
            key, sealed_at(SecretField.REFRESH_TOKEN), row.refresh_token, accept_unbound=accept_unbound
        ),
        id_token=open_value(
            key, sealed_at(SecretField.ID_TOKEN), row.id_token, accept_unbound=accept_unbound
        ),
        expires_at=row.expires_at,
        refresh_token_expires_at=row.refresh_token_expires_at,
        scopes=tuple(row.scopes or ()),
        account=ExternalAccount(id=row.account) if row.account else None,
    )
    return client, previous
