"""Connections as a caller sees them: list, read, revoke and store API keys (the vault holds them)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal, connection_visible_to
from grantline.auth_gateway.service.problems import Problem, invalid, provider_disabled
from grantline.auth_gateway.service.views import ConnectionPage, ConnectionView, connection_view
from grantline.contract import vault, vault_admin
from grantline.providers.tenant_patterns import value_matches

ConnectionStatus = Literal["pending", "active", "reauth_required", "revoked"]
RevokeReason = Literal["user", "admin"]


async def visible_connection(gw: Gateway, caller: Principal, connection_id: str) -> vault.ConnectionInfo:
    """A connection the caller may see; anything else (another tenant's, another user's) is a 404."""
    return await connection_visible_to(gw.bus, caller, connection_id)


async def list_connections(
    gw: Gateway,
    caller: Principal,
    *,
    user_id: str | None = None,
    workspace: bool = False,
    provider: str | None = None,
    status: ConnectionStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ConnectionPage:
    """One page of the connections the caller may see, newest first (never a secret)."""
    owner: str | None
    if caller.kind == "connect_session" or user_id or workspace:
        owner = caller.owner_for(user_id=user_id, workspace=workspace)
    else:
        owner = None  # the tenant key may list everything
    page = await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_LIST,
        vault_admin.ListConnectionsRequest(
            tenant_id=caller.tenant_id,
            owner=owner,
            provider=provider,
            status=status,
            cursor=cursor,
            limit=limit,
        ),
        vault_admin.ConnectionList,
    )
    return ConnectionPage(
        connections=[connection_view(c) for c in page.connections if c.tenant_id == caller.tenant_id],
        next_cursor=page.next_cursor,
    )


async def revoke_connection(
    gw: Gateway, caller: Principal, connection_id: str, *, reason: RevokeReason | None
) -> vault.ConnectionInfo:
    """Revoke through the vault; a connect session always revokes as the user. Returns what it was."""
    info = await visible_connection(gw, caller, connection_id)
    if caller.kind == "connect_session":
        if reason == "admin":
            raise Problem(403, "forbidden", "a connect session revokes as the user")
        reason = "user"
    await gw.bus.ask(
        vault.SUBJECT_REVOKE,
        vault.RevokeRequest(
            tenant_id=caller.tenant_id,
            connection_id=connection_id,
            reason=reason or "admin",
            actor=caller.actor,
        ),
        vault.OkReply,
    )
    return info


async def set_default_connection(gw: Gateway, caller: Principal, connection_id: str) -> ConnectionView:
    """Make an active connection the one its owner's resolves use for its provider (no connection id)."""
    info = await visible_connection(gw, caller, connection_id)
    updated = await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_SET_DEFAULT,
        vault_admin.ConnectionRef(tenant_id=caller.tenant_id, connection_id=info.connection_id),
        vault.ConnectionInfo,
    )
    return connection_view(updated)


async def remove_connection(gw: Gateway, caller: Principal, connection_id: str) -> vault.ConnectionInfo:
    """Delete a revoked connection for good (a connect session may remove only its user's)."""
    info = await visible_connection(gw, caller, connection_id)
    return await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_REMOVE,
        vault_admin.ConnectionRef(tenant_id=caller.tenant_id, connection_id=info.connection_id),
        vault.ConnectionInfo,
    )


async def store_api_key_connection(
    gw: Gateway,
    caller: Principal,
    *,
    provider: str,
    fields: dict[str, SecretStr],
    user_id: str | None = None,
    workspace: bool = False,
    name: str | None = None,
    shared: bool = False,
) -> ConnectionView:
    """Hand an API key to the vault (it is never returned); fields are checked against the definition.

    ``shared`` (a workspace key only): the key serves every user of the tenant without their own.
    """
    owner = caller.owner_for(user_id=user_id, workspace=workspace)
    caller.require_connectable(provider)
    if shared and not workspace:
        raise invalid("only a workspace key (workspace: true) can be shared with every user")
    definition = await gw.catalogue.provider(caller.tenant_id, provider)
    if definition.api_key is None:
        raise invalid(f"provider {definition.id!r} uses OAuth: POST /v1/connections/initiate")
    if not definition.enabled:
        raise provider_disabled(definition.id)
    expected = {field.id: field for field in definition.api_key.fields}
    missing = sorted(set(expected) - set(fields))
    unknown = sorted(set(fields) - set(expected))
    if missing or unknown:
        raise invalid(
            f"fields must be exactly: {', '.join(sorted(expected))}", missing=missing, unknown=unknown
        )
    for field_id, spec in expected.items():
        value = fields[field_id].get_secret_value()
        if not value.strip():
            raise invalid(f"field {field_id!r} is empty")
        if spec.pattern and not value_matches(spec.pattern, value):
            raise invalid(f"field {field_id!r} does not have the expected format")
    info = await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_API_KEY,
        vault_admin.StoreApiKeyRequest(
            tenant_id=caller.tenant_id,
            owner=owner,
            provider=definition.id,
            fields=fields,
            name=name,
            actor=caller.actor,
            shared=shared,
        ),
        vault.ConnectionInfo,
        with_secrets=True,
    )
    return connection_view(info)
