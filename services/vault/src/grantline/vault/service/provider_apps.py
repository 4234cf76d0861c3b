"""Provider apps: a tenant's own OAuth client per provider. Secrets are write-only."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import SecretStr

from grantline.contract.audit import AuditAction
from grantline.contract.connections import SharingChanged
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault_admin import (
    ProviderAppDeleted,
    ProviderAppDeleteRequest,
    ProviderAppInfo,
    ProviderAppList,
    ProviderAppRef,
    PutProviderAppRequest,
)
from grantline.providers.authorize import resolve_settings

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.secret_wire import is_masked
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters.provider_app_repository import PLATFORM, StoredProviderApp
from grantline.vault.adapters.provider_client import ClientCredentials
from grantline.vault.domain import SealContext, SecretField
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.records import audit, emit
from grantline.vault.service.revocation import ProviderRevocation, revoke_in_transaction, tell_providers
from grantline.vault.service.sealing import open_value, seal_value


def app_info(row: StoredProviderApp, tenant_id: str | None = None) -> ProviderAppInfo:
    """What a reply may say about an app: never its secrets, only whether they are set. A platform
    app is described to the tenant asking (``tenant_id``) as ``platform``."""
    return ProviderAppInfo(
        tenant_id=tenant_id or row.tenant_id,
        platform=row.tenant_id == PLATFORM,
        provider=row.provider,
        name=row.name,
        id=row.id,
        client_id=row.client_id,
        has_client_secret=row.client_secret is not None,
        has_webhook_secret=row.webhook_secret is not None,
        scopes=list(row.scopes or []),
        settings=dict(row.settings or {}),
        allow_workspace_fallback=row.allow_workspace_fallback,
        force_workspace_connection=row.force_workspace_connection,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def client_credentials(
    ctx: VaultContext, conn: DriverConnection, app: StoredProviderApp
) -> ClientCredentials:
    """The app's client id and decrypted secret, for one call to the app's provider."""
    key = await ctx.keys.for_opening(conn, app.tenant_id)
    context = SealContext.for_provider_app(app.tenant_id, app.id, provider=app.provider)
    secret = open_value(key, context, app.client_secret, accept_unbound=ctx.accept_unbound_seals)
    return ClientCredentials(
        client_id=app.client_id, client_secret=secret or _NO_SECRET, settings=dict(app.settings or {})
    )


_NO_SECRET = SecretStr("")
MASKED_SECRET = "a secret arrived masked; send it with grantline.runtime.nats.secret_wire"
NAMED_APP_SHARES_NOTHING = (
    "a named provider app shares no workspace connection: set workspace sharing on the provider's default app"
)


def _app_label(provider: str, name: str | None) -> str:
    return f"{provider!r}" if name is None else f"{provider!r} named {name!r}"


async def _revoke_connections_of(
    ctx: VaultContext, conn: DriverConnection, app: StoredProviderApp, actor: str
) -> tuple[list[ProviderRevocation], int]:
    """Revoke every connection made with the app (reason ``provider_app_disabled``) in `conn`'s
    transaction: a resolve after it commits finds them revoked. Returns the provider calls still to make."""
    pending: list[ProviderRevocation] = []
    rows = await connection_rows.active_for_app(conn, app.id)
    for row in rows:
        job = await revoke_in_transaction(
            ctx, conn, row, reason="provider_app_disabled", actor=actor, app=app
        )
        if job is not None:
            pending.append(job)
    return pending, len(rows)


async def put_app(ctx: VaultContext, request: PutProviderAppRequest) -> ProviderAppInfo | ErrorReply:
    """Create or update a tenant's provider app; ``enabled: false`` revokes its connections (as delete)."""
    if is_masked(request.client_secret) or is_masked(request.webhook_secret):
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, MASKED_SECRET)
    if request.name is not None and (request.allow_workspace_fallback or request.force_workspace_connection):
        # Resolve reads the sharing policy from the default app only (one policy per provider).
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, NAMED_APP_SHARES_NOTHING)
    pending: list[ProviderRevocation] = []
    async with ctx.transaction() as conn:
        try:
            definition, stored = await ctx.tenant_definition(conn, request.tenant_id, request.provider)
            settings = (
                resolve_settings(definition, request.settings)
                if definition.auth != "api_key"
                else dict(request.settings)
            )
        except UnknownProvider:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"unknown provider {request.provider!r}")
        except (CatalogueError, ValueError) as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error)[:500])
        existing = await app_rows.get(
            conn, request.tenant_id, request.provider, name=request.name, for_update=True
        )
        app_id = existing.id if existing is not None else f"pa_{secrets.token_hex(12)}"
        key = await ctx.keys.reserve(conn, request.tenant_id, encryptions=2)
        values: dict[str, Any] = {
            "client_id": request.client_id,
            "scopes": list(request.scopes),
            "settings": settings,
            "allow_workspace_fallback": request.allow_workspace_fallback,
            "force_workspace_connection": request.force_workspace_connection,
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
                conn,
                {
                    "id": app_id,
                    "tenant_id": request.tenant_id,
                    "provider": request.provider,
                    "name": request.name,
                    **values,
                },
            )
        else:
            await app_rows.update_row(conn, app_id, values)
        revoked = 0
        if existing is not None and existing.enabled and not request.enabled:
            pending, revoked = await _revoke_connections_of(ctx, conn, existing, request.actor)
        if existing is not None:
            await _tell_sharing(ctx, conn, existing, request)
        await emit(
            ctx,
            conn,
            audit(
                request.tenant_id,
                AuditAction.PROVIDER_APP_CHANGED,
                actor=request.actor,
                provider=request.provider,
                detail={
                    "change": "created" if existing is None else "updated",
                    **({"name": request.name} if request.name is not None else {}),
                    "enabled": request.enabled,
                    **({"revoked_connections": revoked} if revoked else {}),
                },
            ),
        )
        row = await app_rows.get(conn, request.tenant_id, request.provider, name=request.name)
        assert row is not None
    await tell_providers(ctx, pending)
    return app_info(row)


def _sharing(allow: bool, force: bool, enabled: bool) -> tuple[bool, bool]:
    # What resolve reads: a disabled app shares nothing.
    return (allow and enabled, force and enabled)


async def _tell_sharing(
    ctx: VaultContext, conn: DriverConnection, existing: StoredProviderApp, request: PutProviderAppRequest
) -> None:
    """Tell satisfaction when the app's workspace connections now share differently (no new grant
    carries it): `connections.sharing_changed` for each of them. Revoked ones too: a revoked forced
    workspace connection still keeps users' own from counting, and un-forcing must lift that."""
    before = _sharing(
        existing.allow_workspace_fallback, existing.force_workspace_connection, existing.enabled
    )
    after = _sharing(request.allow_workspace_fallback, request.force_workspace_connection, request.enabled)
    if before == after:
        return
    for row in await connection_rows.workspace_for_app(conn, existing.id):
        await emit(
            ctx,
            conn,
            SharingChanged(
                tenant_id=row.tenant_id,
                connection_id=row.id,
                owner=row.owner,
                provider=row.provider,
                shared_fallback=after[0],
                workspace_forced=after[1],
            ),
        )


async def get_app(ctx: VaultContext, request: ProviderAppRef) -> ProviderAppInfo | ErrorReply:
    """One app's metadata; with ``or_platform``, the operator's platform app when the tenant has none.
    A named app is only ever the tenant's own."""
    async with ctx.single_statement(wake_relay=False) as conn:
        if request.or_platform and request.name is None:
            row = await app_rows.get_for_flow(conn, request.tenant_id, request.provider)
        else:
            row = await app_rows.get(conn, request.tenant_id, request.provider, name=request.name)
    if row is None:
        return ErrorReply.of(
            ErrorCode.NOT_FOUND, f"no provider app for {_app_label(request.provider, request.name)}"
        )
    return app_info(row, request.tenant_id)


async def list_apps(ctx: VaultContext, request: ProviderAppRef) -> ProviderAppList:
    """Every app of the tenant, named ones too (the request's provider is ignored); with
    ``or_platform``, also the platform apps of providers the tenant has no default app for."""
    async with ctx.transaction() as conn:
        rows = list(await app_rows.list_for_tenant(conn, request.tenant_id))
        if request.or_platform:
            own = {row.provider for row in rows if row.name is None}
            rows += [row for row in await app_rows.list_for_tenant(conn, PLATFORM) if row.provider not in own]
    return ProviderAppList(provider_apps=[app_info(row, request.tenant_id) for row in rows])


async def delete_app(ctx: VaultContext, request: ProviderAppDeleteRequest) -> ProviderAppDeleted | ErrorReply:
    """Disable the app and revoke every connection made with it (reason `provider_app_disabled`).
    A named app is disabled the same way: its row stays (revocations at the provider need its
    client), and a later put under the same name enables it again."""
    async with ctx.transaction() as conn:
        app = await app_rows.get(
            conn, request.tenant_id, request.provider, name=request.name, for_update=True
        )
        if app is None:
            return ErrorReply.of(
                ErrorCode.NOT_FOUND, f"no provider app for {_app_label(request.provider, request.name)}"
            )
        await app_rows.update_row(conn, app.id, {"enabled": False})
        pending, revoked = await _revoke_connections_of(ctx, conn, app, request.actor)
        await emit(
            ctx,
            conn,
            audit(
                request.tenant_id,
                AuditAction.PROVIDER_APP_CHANGED,
                actor=request.actor,
                provider=request.provider,
                detail={
                    "change": "disabled",
                    "revoked_connections": revoked,
                    **({"name": request.name} if request.name is not None else {}),
                },
            ),
        )
    await tell_providers(ctx, pending)
    return ProviderAppDeleted(provider=request.provider, revoked_connections=revoked, name=request.name)
