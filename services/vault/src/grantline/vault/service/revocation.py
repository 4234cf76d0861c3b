"""Revocation: token material is deleted in the transaction that marks the connection revoked.

The provider is told afterwards, outside the transaction and bounded in time: a provider that is
down must not keep a secret usable here. The same transaction keeps the call in
`vault.pending_revocations` (the token still sealed exactly as it was in the connection), so a
provider that is down, or a crash after the commit, only delays the call: `retry_due_revocations`
makes it again with exponential backoff until the provider confirms, refuses for good (a 4xx), or
`revoke_max_attempts` calls have failed; then the row and its sealed token are deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from grantline.contract.audit import AuditAction
from grantline.contract.connections import ConnectionRevoked
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import OkReply, RevokeRequest
from grantline.providers.catalogue import CatalogueError
from grantline.providers.definition import ProviderDefinition
from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import pending_revocation_rows as pending_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.adapters.connection_repository import StoredConnection
from grantline.vault.adapters.pending_revocation_rows import PendingRevocation, RevocationBinding
from grantline.vault.adapters.provider_app_repository import StoredProviderApp
from grantline.vault.adapters.provider_client import ClientCredentials, ProviderUnavailable
from grantline.vault.domain import DecryptionError, SealContext, SecretField
from grantline.vault.domain.connection_rules import ConnectionStatus
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.records import audit, emit, owner_user
from grantline.vault.service.sealing import open_value

log = logging.getLogger(__name__)
_REASONS = ("user", "admin", "provider", "provider_app_disabled")


@dataclass
class ProviderRevocation:
    """A revocation call still to make, after the commit."""

    definition: ProviderDefinition
    client: ClientCredentials
    token: SecretStr
    token_type_hint: str
    # Its row in vault.pending_revocations, deleted once the provider answers for good.
    revocation_id: str


async def revoke_in_transaction(
    ctx: VaultContext,
    conn: DriverConnection,
    row: StoredConnection,
    *,
    reason: str,
    actor: str,
    app: StoredProviderApp | None = None,
) -> ProviderRevocation | None:
    """Mark `row` revoked, delete its secrets, emit events; keep and return the provider call to make."""
    job: ProviderRevocation | None = None
    if row.auth_kind != "api_key" and (row.refresh_token is not None or row.access_token is not None):
        job = await _provider_job(ctx, conn, row, app)
    await connection_rows.update_row(
        conn,
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
        await connection_rows.promote_next_default(conn, row)
    await emit(
        ctx,
        conn,
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


async def revoke_superseded_grant(
    ctx: VaultContext, conn: DriverConnection, row: StoredConnection, *, new_client_id: str
) -> ProviderRevocation | None:
    """Keep and return the call that ends the grant `row` holds, which a re-authorization through
    another provider app is about to overwrite (the platform's app, then the tenant's own, say).

    Once its tokens are overwritten nothing here could use or revoke that grant, but the provider
    would still honour it, and list it to the user as an app with access. Not when the old app has
    the same client id: providers end every grant of a client at once (Google, GitHub), the new one
    included.
    """
    if row.auth_kind == "api_key" or (row.refresh_token is None and row.access_token is None):
        return None
    if row.provider_app_id is None:
        return None
    previous_app = await app_rows.get_by_id(conn, row.provider_app_id)
    if previous_app is None or previous_app.client_id == new_client_id:
        return None
    return await _provider_job(ctx, conn, row, previous_app)


async def _provider_job(
    ctx: VaultContext, conn: DriverConnection, row: StoredConnection, app: StoredProviderApp | None
) -> ProviderRevocation | None:
    found = await _definition_and_app(
        ctx, conn, row.tenant_id, row.provider, row.provider_definition, row.provider_app_id, app
    )
    if found is None:
        return None
    definition, app = found
    assert definition.oauth is not None and definition.oauth.revoke is not None
    field = _field_to_revoke(row, definition.oauth.revoke.client_auth)
    sealed = row.refresh_token if field is SecretField.REFRESH_TOKEN else row.access_token
    assert sealed is not None  # the field chosen holds a token
    binding = RevocationBinding(
        tenant_id=row.tenant_id,
        connection_id=row.id,
        owner=row.owner,
        provider=row.provider,
        provider_app_id=app.id,
        field=field.value,
        sealed_token=sealed,
        token_type_hint=field.value,
    )
    job = await _open_job(ctx, conn, binding, definition, app)
    if job is None:
        return None
    # Due only after the first backoff: the call made right after the commit is the first attempt.
    due = datetime.now(UTC) + timedelta(seconds=ctx.settings.revoke_retry_base_seconds)
    job.revocation_id = await pending_rows.add(conn, binding, next_attempt_at=due)
    return job


async def _definition_and_app(
    ctx: VaultContext,
    conn: DriverConnection,
    tenant_id: str,
    provider: str,
    stored: Any,
    provider_app_id: str | None,
    app: StoredProviderApp | None,
) -> tuple[ProviderDefinition, StoredProviderApp] | None:
    # The definition the grant was made with (kept with the connection), else the tenant's current one.
    if not stored and provider not in ctx.catalogue:
        stored = await tenant_provider_rows.definition(conn, tenant_id, provider)
    try:
        definition = ctx.definition(provider, stored)
    except (UnknownProvider, CatalogueError):
        return None
    if definition.oauth is None or definition.oauth.revoke is None:
        return None
    if app is None and provider_app_id is not None:
        app = await app_rows.get_by_id(conn, provider_app_id)
    if app is None:
        return None
    return definition, app


def _field_to_revoke(row: StoredConnection, client_auth: str) -> SecretField:
    # Revoking the refresh token ends the whole grant (RFC 7009 2.1); fall back to the access token.
    if client_auth == "bearer_token" and row.access_token is not None:
        return SecretField.ACCESS_TOKEN
    return SecretField.REFRESH_TOKEN if row.refresh_token is not None else SecretField.ACCESS_TOKEN


async def _open_job(
    ctx: VaultContext,
    conn: DriverConnection,
    binding: RevocationBinding,
    definition: ProviderDefinition,
    app: StoredProviderApp,
    revocation_id: str = "",
) -> ProviderRevocation | None:
    """Open the token (bound to its connection, as it was sealed there) and the app's client secret."""
    accept_unbound = ctx.accept_unbound_seals
    key = await ctx.keys.for_opening(conn, binding.tenant_id)
    token_context = SealContext.for_connection(
        binding.tenant_id,
        binding.connection_id,
        owner=binding.owner,
        provider=binding.provider,
        field=binding.field,
    )
    # The client secret is bound to the provider it is sent to: the connection's.
    app_secret = SealContext.for_provider_app(app.tenant_id, app.id, provider=binding.provider)
    try:
        token = open_value(key, token_context, binding.sealed_token, accept_unbound=accept_unbound)
        # An operator's platform app seals its secret with the platform's own key.
        app_key = (
            key if app.tenant_id == binding.tenant_id else await ctx.keys.for_opening(conn, app.tenant_id)
        )
        secret = open_value(app_key, app_secret, app.client_secret, accept_unbound=accept_unbound)
    except DecryptionError as error:
        # The secrets do not open (altered, or moved to another owner or provider): they are
        # deleted all the same; the provider is not told.
        log.error(
            "provider revocation skipped: the sealed secrets do not open",
            extra={"connection_id": binding.connection_id, "reason": error.reason},
        )
        return None
    assert token is not None
    client = ClientCredentials(app.client_id, secret or SecretStr(""), dict(app.settings or {}))
    return ProviderRevocation(definition, client, token, binding.token_type_hint, revocation_id)


async def tell_providers(ctx: VaultContext, jobs: list[ProviderRevocation]) -> None:
    """Make the provider revocation calls, a few at a time, each bounded in time.

    A call the provider confirms (or refuses for good) is forgotten; one that fails stays in
    `vault.pending_revocations`, already scheduled for its next attempt.
    """
    if not jobs:
        return
    limit = asyncio.Semaphore(8)
    answered: list[str] = []

    async def one(job: ProviderRevocation) -> None:
        async with limit:
            try:
                async with asyncio.timeout(ctx.settings.revoke_timeout_seconds):
                    confirmed = await ctx.providers.revoke(
                        job.definition, job.client, token=job.token, token_type_hint=job.token_type_hint
                    )
            except (TimeoutError, ProviderUnavailable) as error:
                log.warning(
                    "provider revocation failed; the secret is already deleted, the call will be retried",
                    extra={"provider": job.definition.id, "error": type(error).__name__},
                )
                return
            if not confirmed:
                log.warning("provider refused revocation; not retried", extra={"provider": job.definition.id})
            answered.append(job.revocation_id)

    await asyncio.gather(*(one(job) for job in jobs))
    if answered:
        async with ctx.transaction() as conn:
            for revocation_id in answered:
                await pending_rows.remove(conn, revocation_id)


async def retry_due_revocations(ctx: VaultContext, *, limit: int = 50) -> int:
    """Make the provider revocation calls that are due again; return how many were taken."""
    settings = ctx.settings
    jobs: list[ProviderRevocation] = []
    async with ctx.transaction() as conn:
        rows = await pending_rows.claim_due(
            conn,
            limit=limit,
            base_seconds=settings.revoke_retry_base_seconds,
            max_seconds=settings.revoke_retry_max_seconds,
        )
        for row in rows:
            job = None
            if row.attempts <= settings.revoke_max_attempts:
                job = await _pending_job(ctx, conn, row)
            else:
                log.warning(
                    "provider revocation given up after the last attempt",
                    extra={"provider": row.provider, "connection_id": row.connection_id},
                )
            if job is None:
                await pending_rows.remove(conn, row.id)
            else:
                jobs.append(job)
    await tell_providers(ctx, jobs)
    return len(rows)


async def _pending_job(
    ctx: VaultContext, conn: DriverConnection, row: PendingRevocation
) -> ProviderRevocation | None:
    connection = await connection_rows.get(conn, row.tenant_id, row.connection_id)
    stored = connection.provider_definition if connection is not None else None
    found = await _definition_and_app(
        ctx, conn, row.tenant_id, row.provider, stored, row.provider_app_id, None
    )
    if found is None:
        return None
    definition, app = found
    return await _open_job(ctx, conn, row.binding, definition, app, row.id)


async def revoke_connection(ctx: VaultContext, request: RevokeRequest) -> OkReply | ErrorReply:
    """`vault.revoke`: idempotent; a connection already revoked replies ok and emits nothing."""
    if request.reason not in _REASONS:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"reason must be one of {', '.join(_REASONS)}")
    async with ctx.transaction() as conn:
        row = await connection_rows.get(conn, request.tenant_id, request.connection_id, for_update=True)
        if row is None:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        if row.status == ConnectionStatus.REVOKED:
            return OkReply()
        job = await revoke_in_transaction(ctx, conn, row, reason=request.reason, actor=request.actor)
    await tell_providers(ctx, [job] if job else [])
    return OkReply()
