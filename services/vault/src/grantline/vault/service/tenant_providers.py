"""Tenant-defined providers: the vault keeps them, so every definition it acts on is its own.

The gateway forwards `POST /v1/providers` here (`vault.providers.put`) and reads the tenant's
catalogue from here. A definition is checked against the catalogue schema, may not take a catalogue
id, and must fit with the tenant's other definitions (no id or app id used twice).
"""

from __future__ import annotations

from typing import Any

from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.vault_admin import (
    MAX_TENANT_PROVIDERS,
    PutTenantProviderRequest,
    TenantProviderDeleted,
    TenantProviderInfo,
    TenantProviderList,
    TenantProviderListRequest,
    TenantProviderRef,
)

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError, parse_definition
from grantline.providers.definition import ProviderDefinition
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.service.context import VaultContext


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
    stored = definition.model_dump(mode="json", exclude_none=True)
    async with ctx.transaction() as session:
        others = [
            parsed
            for raw in await tenant_provider_rows.definitions(session, request.tenant_id)
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
        created = await tenant_provider_rows.put(
            session, request.tenant_id, definition.id, stored, only_if_absent=request.only_if_absent
        )
        kept = await tenant_provider_rows.definition(session, request.tenant_id, definition.id)
    return TenantProviderInfo(
        tenant_id=request.tenant_id, provider=definition.id, definition=kept or stored, created=created
    )


async def get_provider(ctx: VaultContext, request: TenantProviderRef) -> TenantProviderInfo | ErrorReply:
    """One of the tenant's own definitions."""
    async with ctx.transaction() as session:
        raw = await tenant_provider_rows.definition(session, request.tenant_id, request.provider)
    if raw is None or request.provider in ctx.catalogue:
        return ErrorReply.of(ErrorCode.NOT_FOUND, f"tenant provider {request.provider!r} not found")
    return TenantProviderInfo(tenant_id=request.tenant_id, provider=request.provider, definition=raw)


async def list_providers(ctx: VaultContext, request: TenantProviderListRequest) -> TenantProviderList:
    """The tenant's own definitions (never one under a catalogue id)."""
    async with ctx.transaction() as session:
        raws = await tenant_provider_rows.definitions(session, request.tenant_id)
    return TenantProviderList(
        tenant_id=request.tenant_id, definitions=[raw for raw in raws if raw.get("id") not in ctx.catalogue]
    )


async def delete_provider(ctx: VaultContext, request: TenantProviderRef) -> TenantProviderDeleted:
    """Forget a definition; connections made with it keep the copy they were granted with."""
    async with ctx.transaction() as session:
        deleted = await tenant_provider_rows.remove(session, request.tenant_id, request.provider)
    return TenantProviderDeleted(tenant_id=request.tenant_id, provider=request.provider, deleted=deleted)
