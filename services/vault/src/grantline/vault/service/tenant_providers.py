"""Tenant-defined providers: the vault keeps them, so every definition it acts on is its own.

The gateway forwards `POST /v1/providers` here (`vault.providers.put`) and reads the tenant's
catalogue from here. A definition is checked against the catalogue schema, may not take a catalogue
id, and must fit with the tenant's other definitions (no id or app id used twice).
"""

from __future__ import annotations

from typing import Any

from grantline.contract.connections import (
    ProviderEnablementChanged,
    TenantProviderApp,
    TenantProviderDefined,
    TenantProviderRemoved,
)
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault_admin import (
    MAX_TENANT_PROVIDERS,
    ProviderEnablement,
    PutTenantProviderRequest,
    SetProviderEnabledRequest,
    TenantProviderDeleted,
    TenantProviderInfo,
    TenantProviderList,
    TenantProviderListRequest,
    TenantProviderRef,
)

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError, parse_definition
from grantline.providers.definition import ProviderDefinition
from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.service.context import VaultContext
from grantline.vault.service.records import emit


def defined_event(tenant_id: str, definition: ProviderDefinition) -> TenantProviderDefined:
    """What satisfaction learns of a tenant's definition: its ids, names and categories only."""
    return TenantProviderDefined(
        tenant_id=tenant_id,
        provider=definition.id,
        name=definition.name,
        category=definition.category,
        auth=definition.auth,
        apps=[TenantProviderApp(id=app.id, name=app.name, category=app.category) for app in definition.apps],
    )


async def store_definition(
    ctx: VaultContext,
    conn: DriverConnection,
    tenant_id: str,
    definition: ProviderDefinition,
    *,
    only_if_absent: bool = False,
) -> tuple[bool, dict[str, Any]]:
    """Store a validated tenant definition and announce it (``connections.provider_defined``) in the
    same transaction; returns whether it is new and the definition kept. Every writer of a tenant's
    own definition (``POST /v1/providers``, MCP discovery) goes through here, so satisfaction's copy
    of the tenant's catalogue never misses one."""
    stored = definition.model_dump(mode="json", exclude_none=True)
    created = await tenant_provider_rows.put(
        conn, tenant_id, definition.id, stored, only_if_absent=only_if_absent
    )
    kept = await tenant_provider_rows.definition(conn, tenant_id, definition.id) or stored
    announced = definition if kept == stored else _parsed(kept)
    if announced is not None:
        await emit(ctx, conn, defined_event(tenant_id, announced))
    return created, kept


async def forget_definition(ctx: VaultContext, conn: DriverConnection, tenant_id: str, provider: str) -> bool:
    """Delete a tenant definition and announce it (``connections.provider_removed``); False when absent."""
    deleted = await tenant_provider_rows.remove(conn, tenant_id, provider)
    if deleted:
        await emit(ctx, conn, TenantProviderRemoved(tenant_id=tenant_id, provider=provider))
    return deleted


def _parsed(raw: dict[str, Any]) -> ProviderDefinition | None:
    try:
        return parse_definition(raw, source="tenant provider")
    except CatalogueError:
        return None  # stored under an older schema: left out rather than break the tenant's catalogue


async def put_provider(
    ctx: VaultContext, request: PutTenantProviderRequest
) -> TenantProviderInfo | ErrorReply:
    """Validate and store a tenant's own provider (or keep the stored one, with `only_if_absent`)."""
    try:
        definition = parse_definition(request.definition, source="provider definition")
    except CatalogueError as error:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error)[:500])
    if definition.id in ctx.catalogue:
        return ErrorReply.of(
            ErrorCode.CONFLICT, f"provider id {definition.id!r} is a catalogue provider; pick another"
        )
    async with ctx.transaction() as conn:
        others = [
            parsed
            for raw in await tenant_provider_rows.definitions(conn, request.tenant_id)
            if (parsed := _parsed(raw)) is not None and parsed.id != definition.id
        ]
        if len(others) >= MAX_TENANT_PROVIDERS:
            return ErrorReply.of(
                ErrorCode.INVALID_REQUEST, f"a tenant may define at most {MAX_TENANT_PROVIDERS} providers"
            )
        try:
            ctx.catalogue.with_tenant_definitions([*others, definition])
        except CatalogueError as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error)[:500])
        created, kept = await store_definition(
            ctx, conn, request.tenant_id, definition, only_if_absent=request.only_if_absent
        )
    return TenantProviderInfo(
        tenant_id=request.tenant_id, provider=definition.id, definition=kept, created=created
    )


async def get_provider(ctx: VaultContext, request: TenantProviderRef) -> TenantProviderInfo | ErrorReply:
    """One of the tenant's own definitions."""
    async with ctx.single_statement(wake_relay=False) as conn:
        raw = await tenant_provider_rows.definition(conn, request.tenant_id, request.provider)
    if raw is None or request.provider in ctx.catalogue:
        return ErrorReply.of(ErrorCode.NOT_FOUND, f"tenant provider {request.provider!r} not found")
    return TenantProviderInfo(tenant_id=request.tenant_id, provider=request.provider, definition=raw)


async def list_providers(ctx: VaultContext, request: TenantProviderListRequest) -> TenantProviderList:
    """The tenant's own definitions (never one under a catalogue id)."""
    async with ctx.transaction() as conn:
        raws = await tenant_provider_rows.definitions(conn, request.tenant_id)
        disabled = await tenant_provider_rows.disabled(conn, request.tenant_id)
    return TenantProviderList(
        tenant_id=request.tenant_id,
        definitions=[raw for raw in raws if raw.get("id") not in ctx.catalogue],
        disabled=disabled,
    )


async def set_enabled(
    ctx: VaultContext, request: SetProviderEnabledRequest
) -> ProviderEnablement | ErrorReply:
    """Switch a provider on or off for the tenant, and announce it (``connections.provider_enabled``).

    Connections stay as they are: a switched-off provider can no longer be connected and satisfies no
    requirement; disabling the provider app is what revokes connections.
    """
    async with ctx.transaction() as conn:
        known = (
            request.provider in ctx.catalogue
            or (await tenant_provider_rows.definition(conn, request.tenant_id, request.provider)) is not None
        )
        if not known:
            return ErrorReply.of(ErrorCode.NOT_FOUND, f"provider {request.provider!r} not found")
        await tenant_provider_rows.switch(conn, request.tenant_id, request.provider, request.enabled)
        await emit(
            ctx,
            conn,
            ProviderEnablementChanged(
                tenant_id=request.tenant_id, provider=request.provider, enabled=request.enabled
            ),
        )
    return ProviderEnablement(tenant_id=request.tenant_id, provider=request.provider, enabled=request.enabled)


async def delete_provider(ctx: VaultContext, request: TenantProviderRef) -> TenantProviderDeleted:
    """Forget a definition; connections made with it keep the copy they were granted with."""
    async with ctx.transaction() as conn:
        deleted = await forget_definition(ctx, conn, request.tenant_id, request.provider)
    return TenantProviderDeleted(tenant_id=request.tenant_id, provider=request.provider, deleted=deleted)
