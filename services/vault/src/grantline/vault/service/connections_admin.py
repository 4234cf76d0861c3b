"""API-key connections, connection listing and reading, and choosing an owner's default."""

from __future__ import annotations

import json
import secrets

from grantline.contract.audit import AuditAction
from grantline.contract.connections import ConnectionGranted
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import ConnectionInfo
from grantline.contract.vault_admin import (
    ConnectionList,
    ConnectionRef,
    ListConnectionsRequest,
    StoreApiKeyRequest,
)
from grantline.providers.api_key_spec import ApiKeySpec

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.providers.tenant_patterns import value_matches
from grantline.runtime.nats.secret_wire import is_masked
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters.provider_client import ProviderUnavailable
from grantline.vault.domain import SecretField
from grantline.vault.domain.connection_rules import ConnectionStatus
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.records import audit, connection_info, emit, owner_user
from grantline.vault.service.sealing import connection_context


async def store_api_key(ctx: VaultContext, request: StoreApiKeyRequest) -> ConnectionInfo | ErrorReply:
    """Validate the fields against the provider's definition (a catalogue one, or the tenant's own)
    and store them sealed."""
    try:
        async with ctx.single_statement(wake_relay=False) as conn:
            definition, stored = await ctx.tenant_definition(conn, request.tenant_id, request.provider)
    except (UnknownProvider, CatalogueError):
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"unknown provider {request.provider!r}")
    if definition.api_key is None:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"{request.provider!r} does not take API keys")
    if request.shared and request.owner != "workspace":
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, "only a workspace key can be shared with every user")
    if any(is_masked(value) for value in request.fields.values()):
        return ErrorReply.of(
            ErrorCode.INVALID_REQUEST,
            "a secret arrived masked; send it with grantline.runtime.nats.secret_wire",
        )
    values: dict[str, str] = {}
    for field in definition.api_key.fields:
        given = request.fields.get(field.id)
        if given is None or not given.get_secret_value():
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"field {field.id!r} is required")
        if field.pattern and not value_matches(field.pattern, given.get_secret_value()):
            # The value is never echoed: it is a secret.
            return ErrorReply.of(
                ErrorCode.INVALID_REQUEST, f"field {field.id!r} does not have the expected format"
            )
        values[field.id] = given.get_secret_value()
    unknown = sorted(set(request.fields) - set(values))
    if unknown:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"unknown field(s): {', '.join(unknown)}")
    refused = await _checked_with_provider(ctx, definition.api_key, values)
    if refused is not None:
        return refused
    connection_id = f"conn_{secrets.token_hex(12)}"
    async with ctx.transaction() as conn:
        keys = await ctx.keys.reserve(conn, request.tenant_id, encryptions=1)
        context = connection_context(request, connection_id, SecretField.API_KEY)
        await connection_rows.insert(
            conn,
            {
                "id": connection_id,
                "tenant_id": request.tenant_id,
                "owner": request.owner,
                "provider": request.provider,
                "auth_kind": "api_key",
                "status": ConnectionStatus.ACTIVE.value,
                "scopes": [],
                "name": request.name or definition.name,
                "token_type": "api_key",
                "api_key": keys.seal(context, json.dumps(values)),
                # A tenant's own provider: the definition it was stored with, as OAuth grants keep it.
                "provider_definition": stored,
                "shared_fallback": request.shared,
            },
        )
        default = await connection_rows.current_default(
            conn, request.tenant_id, request.owner, request.provider
        )
        row = await connection_rows.get(conn, request.tenant_id, connection_id)
        assert row is not None
        if default is None or default.status == ConnectionStatus.REVOKED:
            await connection_rows.set_default(conn, row)
            row = await connection_rows.get(conn, request.tenant_id, connection_id)
            assert row is not None
        await emit(
            ctx,
            conn,
            ConnectionGranted(
                tenant_id=request.tenant_id,
                connection_id=connection_id,
                owner=request.owner,
                provider=request.provider,
                refreshable=False,
                auth_kind="api_key",
                # Satisfaction counts a shared workspace key for every user without their own.
                shared_fallback=request.shared,
            ),
            audit(
                request.tenant_id,
                AuditAction.CONNECTION_GRANTED,
                actor=request.actor,
                connection_id=connection_id,
                provider=request.provider,
                user_id=owner_user(request.owner),
                detail={"auth_kind": "api_key", **({"shared": True} if request.shared else {})},
            ),
        )
        return connection_info(row)


async def _checked_with_provider(
    ctx: VaultContext, spec: ApiKeySpec, values: dict[str, str]
) -> ErrorReply | None:
    """Make the definition's check call, if it has one: a key the provider refuses is not stored."""
    if spec.check is None:
        return None
    try:
        accepted = await ctx.providers.api_key_accepted(
            spec.check.url, spec.check.method, spec.check_headers(values)
        )
    except ProviderUnavailable:
        return ErrorReply.of(
            ErrorCode.PROVIDER_UNAVAILABLE, "the provider could not check the key; try again"
        )
    if accepted is False:
        # Never the value: only that the provider refused it.
        return ErrorReply.of(
            ErrorCode.INVALID_REQUEST, "the provider refused the key (its check call answered 401/403)"
        )
    return None


async def list_connections(ctx: VaultContext, request: ListConnectionsRequest) -> ConnectionList:
    """A page of connections (metadata only), ordered by id; the cursor is the last id."""
    async with ctx.single_statement(wake_relay=False) as conn:
        rows = await connection_rows.list_page(
            conn,
            request.tenant_id,
            owner=request.owner,
            provider=request.provider,
            status=request.status,
            after_id=request.cursor,
            limit=request.limit + 1,
        )
    page = rows[: request.limit]
    next_cursor = page[-1].id if len(rows) > request.limit else None
    return ConnectionList(connections=[connection_info(row) for row in page], next_cursor=next_cursor)


async def get_connection(ctx: VaultContext, request: ConnectionRef) -> ConnectionInfo | ErrorReply:
    """One connection's metadata."""
    async with ctx.single_statement(wake_relay=False) as conn:
        row = await connection_rows.get(conn, request.tenant_id, request.connection_id)
    if row is None:
        return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
    return connection_info(row)


async def set_default(ctx: VaultContext, request: ConnectionRef) -> ConnectionInfo | ErrorReply:
    """Make an active connection its owner's default for its provider."""
    async with ctx.transaction() as conn:
        row = await connection_rows.get(conn, request.tenant_id, request.connection_id, for_update=True)
        if row is None:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        if row.status != ConnectionStatus.ACTIVE:
            return ErrorReply.of(ErrorCode.CONFLICT, f"a {row.status} connection cannot be the default")
        await connection_rows.set_default(conn, row)
        updated = await connection_rows.get(conn, request.tenant_id, request.connection_id)
        assert updated is not None
        return connection_info(updated)


async def remove_revoked(ctx: VaultContext, request: ConnectionRef) -> ConnectionInfo | ErrorReply:
    """Delete a revoked connection for good (the user's "Remove"); an active one must be revoked first."""
    async with ctx.transaction() as conn:
        row = await connection_rows.get(conn, request.tenant_id, request.connection_id, for_update=True)
        if row is None:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        if row.status != ConnectionStatus.REVOKED:
            return ErrorReply.of(
                ErrorCode.CONFLICT, f"a {row.status} connection must be revoked before removal"
            )
        info = connection_info(row)
        await connection_rows.delete_revoked(conn, request.tenant_id, request.connection_id)
        await emit(
            ctx,
            conn,
            audit(
                request.tenant_id,
                AuditAction.CONNECTION_REMOVED,
                connection_id=row.id,
                provider=row.provider,
                user_id=owner_user(row.owner),
            ),
        )
        return info
