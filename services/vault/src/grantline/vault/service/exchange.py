"""`vault.exchange`: trade an authorization code for tokens and store the grant.

The provider call happens between two short transactions, never inside one: a slow provider must
not hold a database connection or row locks.
"""

from __future__ import annotations

import logging
from typing import Any

from grantline.contract.audit import AuditAction
from grantline.contract.connections import ConnectionGranted
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import ConnectionInfo, ExchangeRequest
from grantline.providers.authorize import SettingsError, resolve_settings

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.providers.definition import ProviderDefinition
from grantline.providers.token_response import TokenResponseError, TokenSet
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.secret_wire import is_masked
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters.provider_app_repository import StoredProviderApp
from grantline.vault.adapters.provider_client import ClientCredentials, ProviderUnavailable
from grantline.vault.domain import SecretField, fingerprint
from grantline.vault.domain.connection_rules import ConnectionStatus, union_scopes
from grantline.vault.service.account_check import wrong_account
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.mcp_servers import rediscover_after_refusal
from grantline.vault.service.provider_apps import client_credentials
from grantline.vault.service.records import audit, connection_info, emit, owner_user
from grantline.vault.service.revocation import ProviderRevocation, revoke_superseded_grant, tell_providers
from grantline.vault.service.sealing import TOKEN_COLUMNS, connection_context, seal_tokens

log = logging.getLogger(__name__)
MASKED_SECRET = "a secret arrived masked; send it with grantline.runtime.nats.secret_wire"


async def exchange(ctx: VaultContext, request: ExchangeRequest) -> ConnectionInfo | ErrorReply:
    """Exchange the code, then create the connection or re-authorize the existing one.

    The definition comes from the catalogue or the vault's own tenant providers, never from the
    request; a re-authorization must name a connection of the same tenant, owner and provider.
    Every check happens before the provider is called.
    """
    if is_masked(request.code) or is_masked(request.code_verifier):
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, MASKED_SECRET)
    async with ctx.transaction() as conn:
        try:
            definition, stored = await ctx.tenant_definition(conn, request.tenant_id, request.provider)
        except (UnknownProvider, CatalogueError):
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"unknown provider {request.provider!r}")
        if definition.oauth is None:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"{request.provider!r} is not an OAuth provider")
        refused = await _target_refused(conn, request)
        if refused is not None:
            return refused
        if request.provider_app is not None:
            # A named app is only ever the tenant's own: another tenant's, or a platform app, is none.
            app = await app_rows.get(conn, request.tenant_id, request.provider, name=request.provider_app)
        else:
            # The tenant's own app, else the operator's platform app (a tenant's own takes precedence).
            app = await app_rows.get_for_flow(conn, request.tenant_id, request.provider)
        if app is None or not app.enabled:
            named = f" named {request.provider_app!r}" if request.provider_app is not None else ""
            return ErrorReply.of(
                ErrorCode.INVALID_REQUEST,
                f"no enabled provider app for {request.provider!r}{named} in this tenant",
            )
        client = await client_credentials(ctx, conn, app)
    try:
        # The flow's settings (the app's, under the connection's own) fill the definition's URL
        # templates: they must match its patterns.
        settings = resolve_settings(definition, {**client.settings, **request.settings})
    except SettingsError as error:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error)[:500])
    client = ClientCredentials(client.client_id, client.client_secret, settings)
    try:
        tokens = await ctx.providers.exchange_code(
            definition,
            client,
            code=request.code.get_secret_value(),
            redirect_uri=request.redirect_uri,
            code_verifier=request.code_verifier.get_secret_value() if request.code_verifier else None,
            requested_scopes=request.requested_scopes,
        )
    except (TokenResponseError, ProviderUnavailable) as error:
        return await _failed(ctx, request, error, stored)
    wrong = wrong_account(request, tokens)
    if wrong is not None:
        return await _failed(ctx, request, wrong, stored)
    try:
        # Settings the user did not give and the provider tells after the grant (Atlassian's site).
        settings = await ctx.providers.discover_settings(definition, tokens.access_token, settings)
    except (SettingsError, ProviderUnavailable) as error:
        return await _failed(ctx, request, error, stored)
    client = ClientCredentials(client.client_id, client.client_secret, settings)
    return await _store(ctx, request, definition, stored, app, client, tokens)


async def _target_refused(conn: DriverConnection, request: ExchangeRequest) -> ErrorReply | None:
    # A re-authorization replaces a connection's tokens: only ever those of the same tenant, owner
    # and provider. A new connection must not take an id that is already in use.
    existing = await connection_rows.get(conn, request.tenant_id, request.connection_id)
    if request.reauthorize:
        if existing is None or existing.owner != request.owner or existing.provider != request.provider:
            return ErrorReply.of(
                ErrorCode.FORBIDDEN, "re-authorization names no connection of this owner and provider"
            )
        if existing.provider_app != request.provider_app:
            # A connection keeps the OAuth client it was made with (its tokens belong to that client).
            return ErrorReply.of(
                ErrorCode.FORBIDDEN, "a re-authorization uses the connection's own provider app"
            )
        return None
    if existing is not None:
        return ErrorReply.of(ErrorCode.CONFLICT, "connection id already in use")
    return None


async def _failed(
    ctx: VaultContext,
    request: ExchangeRequest,
    error: TokenResponseError | ProviderUnavailable | SettingsError | ErrorReply,
    stored: dict[str, Any] | None,
) -> ErrorReply:
    if isinstance(error, TokenResponseError):
        code = error.error
    elif isinstance(error, ErrorReply):
        code = error.error.code.value
    else:
        code = "settings_not_found" if isinstance(error, SettingsError) else "provider_unavailable"
    detail: dict[str, Any] = {"error": code}
    rediscovered = None
    if code == "invalid_client" and stored:
        # An MCP server's authorization server no longer knows the client Grantline registered there
        # (purged, expired, or its metadata changed): discover and register again, once. This code was
        # issued to the old client, so the user connects again.
        rediscovered = await rediscover_after_refusal(
            ctx, request.tenant_id, stored, request.redirect_uri, request.client_metadata_url
        )
        if rediscovered is not None:
            detail["rediscovered"] = rediscovered
    async with ctx.transaction() as conn:
        await emit(
            ctx,
            conn,
            audit(
                request.tenant_id,
                AuditAction.CONNECTION_EXCHANGED,
                connection_id=request.connection_id,
                provider=request.provider,
                user_id=owner_user(request.owner),
                outcome="failure",
                detail=detail,
            ),
        )
    if isinstance(error, ProviderUnavailable):
        return ErrorReply.of(
            ErrorCode.PROVIDER_UNAVAILABLE, f"{request.provider} did not answer the code exchange"
        )
    if isinstance(error, ErrorReply):
        return error
    if isinstance(error, SettingsError):
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error)[:500])
    message = f"{request.provider} refused the authorization code: {code}"
    if rediscovered is not None:
        message += (
            f"; the server no longer knew Grantline's client, so Grantline discovered it again and"
            f" registered anew ({rediscovered}): connect again"
        )
    return ErrorReply.of(ErrorCode.INVALID_REQUEST, message)


async def _store(
    ctx: VaultContext,
    request: ExchangeRequest,
    definition: ProviderDefinition,
    stored: dict[str, Any] | None,
    app: StoredProviderApp,
    client: ClientCredentials,
    tokens: TokenSet,
) -> ConnectionInfo:
    account = tokens.account.id if tokens.account else None
    superseded: ProviderRevocation | None = None
    async with ctx.transaction() as conn:
        existing = await connection_rows.get(conn, request.tenant_id, request.connection_id, for_update=True)
        if existing is not None and (
            existing.owner != request.owner or existing.provider != request.provider
        ):
            existing = None  # an id from another grant: never re-use it across owners or providers
        if existing is None and account is not None:
            existing = await connection_rows.find_by_account(
                conn,
                request.tenant_id,
                request.owner,
                request.provider,
                account,
                dict(client.settings),
                provider_app=app.name,
            )
        connection_id = existing.id if existing is not None else request.connection_id
        key = await ctx.keys.reserve(conn, request.tenant_id, encryptions=TOKEN_COLUMNS)
        stored_account = account or (existing.account if existing is not None else None)
        context = connection_context(request, connection_id, SecretField.ACCESS_TOKEN)
        sealed = seal_tokens(key, context, tokens)
        values: dict[str, Any] = {
            "status": ConnectionStatus.ACTIVE.value,
            "status_reason": None,
            "provider_app_id": app.id,
            "provider_app": app.name,
            "auth_kind": definition.auth,
            "account": stored_account,
            "account_digest": key.account_digest(request.provider, stored_account)
            if stored_account
            else None,
            "token_type": _token_type(tokens.token_type),
            "expires_at": tokens.expires_at,
            "refresh_token_expires_at": tokens.refresh_token_expires_at,
            "last_refreshed_at": None,
            "settings": dict(client.settings),
            # A tenant provider's definition as the grant was made (refresh and revocation use it).
            "provider_definition": stored,
            "lease_owner": None,
            "lease_expires_at": None,
            **sealed,
        }
        reauthorized = existing is not None
        moved_from_app = None
        if existing is not None and existing.provider_app_id != app.id:
            moved_from_app = existing.provider_app_id
            superseded = await revoke_superseded_grant(ctx, conn, existing, new_client_id=client.client_id)
        if existing is not None:
            # A narrowing re-authorization keeps what the new grant has; otherwise grants add up.
            kept = [] if request.replace_scopes and request.reauthorize else existing.scopes or []
            values["scopes"] = union_scopes(kept, tokens.scopes)
            # Step-up: what the server said was missing and is now granted is no longer missing.
            values["missing_scopes"] = [s for s in existing.missing_scopes or [] if s not in values["scopes"]]
            await connection_rows.update_row(conn, connection_id, values)
        else:
            values["scopes"] = union_scopes(tokens.scopes)
            await connection_rows.insert(
                conn,
                {
                    "id": connection_id,
                    "tenant_id": request.tenant_id,
                    "owner": request.owner,
                    "provider": request.provider,
                    "name": request.name or _default_name(definition, tokens),
                    **values,
                },
            )
        row = await connection_rows.get(conn, request.tenant_id, connection_id)
        assert row is not None
        default = await connection_rows.current_default(
            conn, request.tenant_id, request.owner, request.provider
        )
        if default is None or default.status == ConnectionStatus.REVOKED or default.id == row.id:
            await connection_rows.set_default(conn, row)
        row = await connection_rows.get(conn, request.tenant_id, connection_id)
        assert row is not None
        fallback = bool(app.allow_workspace_fallback) and request.owner == "workspace"
        await emit(
            ctx,
            conn,
            ConnectionGranted(
                tenant_id=request.tenant_id,
                connection_id=connection_id,
                owner=request.owner,
                provider=request.provider,
                scopes=list(row.scopes),
                account=row.account,
                expires_at=row.expires_at,
                reauthorized=reauthorized,
                refresh_token_expires_at=row.refresh_token_expires_at,
                refreshable=row.refresh_token is not None,
                shared_fallback=fallback,
                workspace_forced=bool(app.force_workspace_connection) and request.owner == "workspace",
                auth_kind=definition.auth,
                missing_scopes=list(row.missing_scopes or []),
            ),
            audit(
                request.tenant_id,
                AuditAction.CONNECTION_EXCHANGED,
                connection_id=connection_id,
                provider=request.provider,
                user_id=owner_user(request.owner),
                detail={
                    "token_fingerprint": fingerprint(
                        ctx.fingerprint_key, tokens.access_token.get_secret_value()
                    )
                },
            ),
            audit(
                request.tenant_id,
                AuditAction.CONNECTION_REAUTHORIZED if reauthorized else AuditAction.CONNECTION_GRANTED,
                connection_id=connection_id,
                provider=request.provider,
                user_id=owner_user(request.owner),
                detail={
                    "scopes": list(row.scopes),
                    "account": row.account,
                    **({"previous_provider_app_id": moved_from_app} if moved_from_app else {}),
                },
            ),
        )
        info = connection_info(row)
    # After the commit, like every provider revocation: a slow provider holds no row lock.
    if superseded is not None:
        await tell_providers(ctx, [superseded])
    return info


def _token_type(value: str) -> str:
    return "Bearer" if value.lower() == "bearer" else value[:40]


def _default_name(definition: ProviderDefinition, tokens: TokenSet) -> str:
    if tokens.account is not None:
        return f"{definition.name} ({tokens.account.name or tokens.account.id})"[:200]
    return definition.name[:200]
