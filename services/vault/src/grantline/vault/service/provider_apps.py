"""Provider apps: a tenant's own OAuth client per provider. Secrets are write-only."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.audit import AuditAction
from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.vault_admin import (
    ProviderAppDeleted,
    ProviderAppDeleteRequest,
    ProviderAppInfo,
    ProviderAppList,
    ProviderAppRef,
    PutProviderAppRequest,
)
from grantline.common.nats.secret_wire import is_masked
from grantline.providers.authorize import resolve_settings

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters.provider_client import ClientCredentials
from grantline.vault.domain import SealContext, SecretField
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.records import audit, emit
from grantline.vault.service.revocation import revoke_in_transaction, tell_providers
from grantline.vault.service.sealing import open_value, seal_value


def app_info(row: Row[Any]) -> ProviderAppInfo:
    """What a reply may say about an app: never its secrets, only whether they are set."""
    return ProviderAppInfo(
        tenant_id=row.tenant_id,
        provider=row.provider,
        id=row.id,
        client_id=row.client_id,
        has_client_secret=row.client_secret is not None,
        has_webhook_secret=row.webhook_secret is not None,
        scopes=list(row.scopes or []),
        settings=dict(row.settings or {}),
        allow_workspace_fallback=row.allow_workspace_fallback,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def client_credentials(ctx: VaultContext, session: AsyncSession, app: Row[Any]) -> ClientCredentials:
    """The app's client id and decrypted secret, for one call to the app's provider."""
    key = await ctx.keys.get_or_create(session, app.tenant_id)
    context = SealContext.for_provider_app(app.tenant_id, app.id, provider=app.provider)
    secret = open_value(key, context, app.client_secret, accept_unbound=ctx.accept_unbound_seals)
    return ClientCredentials(
        client_id=app.client_id, client_secret=secret or _NO_SECRET, settings=dict(app.settings or {})
    )


_NO_SECRET = SecretStr("")
MASKED_SECRET = "a secret arrived masked; send it with grantline.common.nats.secret_wire"


async def put_app(ctx: VaultContext, request: PutProviderAppRequest) -> ProviderAppInfo | ErrorReply:
    """Create or update a tenant's provider app."""
    if is_masked(request.client_secret) or is_masked(request.webhook_secret):
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, MASKED_SECRET)
    async with ctx.transaction() as session:
        try:
            definition, stored = await ctx.tenant_definition(session, request.tenant_id, request.provider)
            settings = (
                resolve_settings(definition, request.settings)
                if definition.auth != "api_key"
                else dict(request.settings)
            )
        except UnknownProvider:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"unknown provider {request.provider!r}")
        except (CatalogueError, ValueError) as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error)[:500])
        existing = await app_rows.get(session, request.tenant_id, request.provider, for_update=True)
        app_id = existing.id if existing is not None else f"pa_{secrets.token_hex(12)}"
        key = await ctx.keys.get_or_create(session, request.tenant_id)
        values: dict[str, Any] = {
            "client_id": request.client_id,
            "scopes": list(request.scopes),
            "settings": settings,
            "allow_workspace_fallback": request.allow_workspace_fallback,
            "enabled": request.enabled,
            "provider_definition": stored,
        }
        context = SealContext.for_provider_app(request.tenant_id, app_id, provider=request.provider)
        if request.client_secret is not None:
            values["client_secret"] = seal_value(key, context, request.client_secret)
        if request.webhook_secret is not None:
            # The webhook secret has no field of its own in the seal format; API_KEY keeps it apart
            # from the client secret (the field is part of the associated data).
            values["webhook_secret"] = seal_value(
                key, context.with_field(SecretField.API_KEY), request.webhook_secret
            )
        if existing is None:
            await app_rows.insert(
                session,
                {"id": app_id, "tenant_id": request.tenant_id, "provider": request.provider, **values},
            )
        else:
            await app_rows.update_row(session, app_id, values)
        await emit(
            ctx,
            session,
            audit(
                request.tenant_id,
                AuditAction.PROVIDER_APP_CHANGED,
                actor=request.actor,
                provider=request.provider,
                detail={"change": "created" if existing is None else "updated", "enabled": request.enabled},
            ),
        )
        row = await app_rows.get(session, request.tenant_id, request.provider)
        assert row is not None
        return app_info(row)


async def get_app(ctx: VaultContext, request: ProviderAppRef) -> ProviderAppInfo | ErrorReply:
    """One app's metadata."""
    async with ctx.transaction() as session:
        row = await app_rows.get(session, request.tenant_id, request.provider)
    if row is None:
        return ErrorReply.of(ErrorCode.NOT_FOUND, f"no provider app for {request.provider!r}")
    return app_info(row)


async def list_apps(ctx: VaultContext, request: ProviderAppRef) -> ProviderAppList:
    """Every app of the tenant (the request's provider is ignored)."""
    async with ctx.transaction() as session:
        rows = await app_rows.list_for_tenant(session, request.tenant_id)
    return ProviderAppList(provider_apps=[app_info(row) for row in rows])


async def delete_app(ctx: VaultContext, request: ProviderAppDeleteRequest) -> ProviderAppDeleted | ErrorReply:
    """Disable the app and revoke every connection made with it (reason `provider_app_disabled`)."""
    async with ctx.transaction() as session:
        app = await app_rows.get(session, request.tenant_id, request.provider, for_update=True)
        if app is None:
            return ErrorReply.of(ErrorCode.NOT_FOUND, f"no provider app for {request.provider!r}")
        await app_rows.update_row(session, app.id, {"enabled": False})
        pending = []
        rows = await connection_rows.active_for_app(session, app.id)
        for row in rows:
            job = await revoke_in_transaction(
                ctx, session, row, reason="provider_app_disabled", actor=request.actor, app=app
            )
            if job is not None:
                pending.append(job)
        await emit(
            ctx,
            session,
            audit(
                request.tenant_id,
                AuditAction.PROVIDER_APP_CHANGED,
                actor=request.actor,
                provider=request.provider,
                detail={"change": "disabled", "revoked_connections": len(rows)},
            ),
        )
    await tell_providers(ctx, pending)
    return ProviderAppDeleted(provider=request.provider, revoked_connections=len(rows))
