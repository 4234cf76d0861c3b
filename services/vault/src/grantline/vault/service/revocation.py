"""Revocation: token material is deleted in the transaction that marks the connection revoked.

The provider is told afterwards, outside the transaction and bounded in time: a provider that is
down must not keep a secret alive, and a crash between the commit and the call only means the
provider was not told (the secret is already gone here).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.audit import AuditAction
from grantline.common.contract.connections import ConnectionRevoked
from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.vault import OkReply, RevokeRequest
from grantline.providers.catalogue import CatalogueError
from grantline.providers.definition import ProviderDefinition
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.adapters.provider_client import ClientCredentials, ProviderUnavailable
from grantline.vault.domain import DataKey, DecryptionError, SealContext, SecretField
from grantline.vault.domain.connection_rules import ConnectionStatus
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.records import audit, emit, owner_user
from grantline.vault.service.sealing import connection_row_context, open_value

log = logging.getLogger(__name__)
_REASONS = ("user", "admin", "provider", "provider_app_disabled")


@dataclass
class ProviderRevocation:
    """A revocation call still to make, after the commit."""

    definition: ProviderDefinition
    client: ClientCredentials
    token: SecretStr
    token_type_hint: str


async def revoke_in_transaction(
    ctx: VaultContext,
    session: AsyncSession,
    row: Row[Any],
    *,
    reason: str,
    actor: str,
    app: Row[Any] | None = None,
) -> ProviderRevocation | None:
    """Mark `row` revoked, delete its secrets, emit events; return the provider call to make later."""
    job: ProviderRevocation | None = None
    if row.auth_kind != "api_key" and (row.refresh_token is not None or row.access_token is not None):
        job = await _provider_job(ctx, session, row, app)
    await connection_rows.update_row(
        session,
        row.id,
        {
            "status": ConnectionStatus.REVOKED.value,
            "status_reason": reason,
            "lease_owner": None,
            "lease_expires_at": None,
            **connection_rows.NO_SECRETS,
        },
    )
    if row.is_default:
        await connection_rows.promote_next_default(session, row)
    await emit(
        ctx,
        session,
        ConnectionRevoked(
            tenant_id=row.tenant_id,
            connection_id=row.id,
            owner=row.owner,
            provider=row.provider,
            reason=reason,  # type: ignore[arg-type]
        ),
        audit(
            row.tenant_id,
            AuditAction.CONNECTION_REVOKED,
            actor=actor,
            connection_id=row.id,
            provider=row.provider,
            user_id=owner_user(row.owner),
            detail={"reason": reason},
        ),
    )
    return job


async def _provider_job(
    ctx: VaultContext, session: AsyncSession, row: Row[Any], app: Row[Any] | None
) -> ProviderRevocation | None:
    # The definition the grant was made with (kept with the connection), else the tenant's current one.
    stored = row.provider_definition
    if not stored and row.provider not in ctx.catalogue:
        stored = await tenant_provider_rows.definition(session, row.tenant_id, row.provider)
    try:
        definition = ctx.definition(row.provider, stored)
    except (UnknownProvider, CatalogueError):
        return None
    if definition.oauth is None or definition.oauth.revoke is None:
        return None
    if app is None and row.provider_app_id is not None:
        app = await app_rows.get_by_id(session, row.provider_app_id)
    if app is None:
        return None
    key = await ctx.keys.get_or_create(session, row.tenant_id)
    try:
        token, hint, secret = _open_for_revocation(ctx, key, row, app, definition.oauth.revoke.client_auth)
    except DecryptionError as error:
        # The row's secrets do not open (altered, or moved to another owner or provider): they are
        # deleted all the same; the provider is not told.
        log.error(
            "provider revocation skipped: the sealed secrets do not open",
            extra={"connection_id": row.id, "reason": error.reason},
        )
        return None
    assert token is not None
    client = ClientCredentials(app.client_id, secret or SecretStr(""), dict(app.settings or {}))
    return ProviderRevocation(definition, client, token, hint)


def _open_for_revocation(
    ctx: VaultContext, key: DataKey, row: Row[Any], app: Row[Any], client_auth: str
) -> tuple[SecretStr | None, str, SecretStr | None]:
    accept_unbound = ctx.accept_unbound_seals

    def opened(field: SecretField, sealed: Any) -> SecretStr | None:
        return open_value(key, connection_row_context(row, field), sealed, accept_unbound=accept_unbound)

    # Revoking the refresh token ends the whole grant (RFC 7009 2.1); fall back to the access token.
    if row.refresh_token is not None:
        token = opened(SecretField.REFRESH_TOKEN, row.refresh_token)
        hint = "refresh_token"
    else:
        token = opened(SecretField.ACCESS_TOKEN, row.access_token)
        hint = "access_token"
    if client_auth == "bearer_token" and row.access_token is not None:
        token = opened(SecretField.ACCESS_TOKEN, row.access_token)
        hint = "access_token"
    # The client secret is bound to the provider it is sent to: the connection's.
    app_secret = SealContext.for_provider_app(app.tenant_id, app.id, provider=row.provider)
    return token, hint, open_value(key, app_secret, app.client_secret, accept_unbound=accept_unbound)


async def tell_providers(ctx: VaultContext, jobs: list[ProviderRevocation]) -> None:
    """Make the provider revocation calls, a few at a time, each bounded in time; failures are logged."""
    if not jobs:
        return
    limit = asyncio.Semaphore(8)

    async def one(job: ProviderRevocation) -> None:
        async with limit:
            try:
                async with asyncio.timeout(ctx.settings.revoke_timeout_seconds):
                    await ctx.providers.revoke(
                        job.definition, job.client, token=job.token, token_type_hint=job.token_type_hint
                    )
            except (TimeoutError, ProviderUnavailable) as error:
                log.warning(
                    "provider revocation failed; the secret is already deleted",
                    extra={"provider": job.definition.id, "error": type(error).__name__},
                )

    await asyncio.gather(*(one(job) for job in jobs))


async def revoke_connection(ctx: VaultContext, request: RevokeRequest) -> OkReply | ErrorReply:
    """`vault.revoke`: idempotent; a connection already revoked replies ok and emits nothing."""
    if request.reason not in _REASONS:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"reason must be one of {', '.join(_REASONS)}")
    async with ctx.transaction() as session:
        row = await connection_rows.get(session, request.tenant_id, request.connection_id, for_update=True)
        if row is None:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        if row.status == ConnectionStatus.REVOKED:
            return OkReply()
        job = await revoke_in_transaction(ctx, session, row, reason=request.reason, actor=request.actor)
    await tell_providers(ctx, [job] if job else [])
    return OkReply()
