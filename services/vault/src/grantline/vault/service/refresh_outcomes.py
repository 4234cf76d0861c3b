"""How a refresh ends on the connection row: each ending is written only under the holder's fence.

Whatever the lease holder learnt (new tokens, a refusal, a failure, nothing to do) lands together with
its events and audit records in one statement, and only while its fence holds; a holder that lost the
fence answers with what the row says now instead. Kept apart from the refresh protocol (refresh.py)
so the rules for what a refresh may leave behind, and how each is reported, are read in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import psycopg

from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.connections import ReauthRequired, TokenRefreshed
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.providers.token_response import TokenSet
from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import refresh_rows
from grantline.vault.domain import SecretField, fingerprint
from grantline.vault.domain.connection_rules import ConnectionStatus
from grantline.vault.domain.data_key_versions import TenantDataKeys
from grantline.vault.service.context import VaultContext
from grantline.vault.service.records import audit, owner_user
from grantline.vault.service.sealing import connection_row_context, seal_tokens

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh attempt came to: the connection's expiry now, or an error reply."""

    connection_id: str
    refreshed: bool
    expires_at: datetime | None = None
    error: ErrorReply | None = None


async def store_tokens(
    ctx: VaultContext, row: Any, fence: int, key: TenantDataKeys, tokens: TokenSet
) -> RefreshOutcome:
    """The provider's new tokens, sealed and written with their events while the fence holds."""
    events = (
        TokenRefreshed(
            tenant_id=row.tenant_id,
            connection_id=row.id,
            owner=row.owner,
            provider=row.provider,
            expires_at=tokens.expires_at,
            refresh_token_rotated=tokens.refresh_token_rotated,
            refresh_token_expires_at=tokens.refresh_token_expires_at,
        ),
        audit(
            row.tenant_id,
            AuditAction.TOKEN_REFRESHED,
            connection_id=row.id,
            provider=row.provider,
            user_id=owner_user(row.owner),
            detail={
                "token_fingerprint": fingerprint(ctx.fingerprint_key, tokens.access_token.get_secret_value()),
                "refresh_token_rotated": tokens.refresh_token_rotated,
            },
        ),
    )
    # The provider has answered: for a rotating token the old refresh token is already spent, so
    # these tokens must land. A write that fails on a broken connection (Postgres restarting, a
    # failover) is retried while the lease lasts; under the fence no retry can land twice.
    stored = await retrying(
        ctx,
        partial(
            refresh_rows.store_refreshed,
            connection_id=row.id,
            owner=ctx.instance_id,
            fence=fence,
            sealed=seal_tokens(key, connection_row_context(row, SecretField.ACCESS_TOKEN), tokens),
            expires_at=tokens.expires_at,
            refresh_token_expires_at=tokens.refresh_token_expires_at,
            scopes=list(tokens.scopes) or list(row.scopes or []),
            events=events,
        ),
        wake_relay=True,
        for_seconds=ctx.settings.refresh_lease_seconds,
    )
    if not stored:
        # Revoked (or the lease lapsed) while the provider answered: these tokens must not land.
        log.warning("refresh result discarded: fence lost", extra={"connection_id": row.id})
        return await current_state(ctx, row)
    return RefreshOutcome(row.id, True, tokens.expires_at)


async def current_state(ctx: VaultContext, row: Any) -> RefreshOutcome:
    """After losing the fence: answer with what the connection is now, not a guess.

    Only a revoked or reauth-required connection is an error; when another replica's refresh
    won, its expiry is the answer, so the refresher keeps the connection on its schedule.
    """
    async with ctx.single_statement(wake_relay=False) as conn:
        current = await refresh_rows.current_state(conn, row.tenant_id, row.id)
    if current is None:
        return RefreshOutcome(row.id, False, error=ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection"))
    return RefreshOutcome(row.id, False, current.expires_at, error=error_for_status(current))


async def mark_reauth(ctx: VaultContext, row: Any, fence: int, reason: str) -> RefreshOutcome:
    """The connection's tokens are of no more use: `reauth_required`, with its events."""
    async with ctx.single_statement() as conn:
        await refresh_rows.mark_reauth_required(
            conn,
            row.id,
            ctx.instance_id,
            fence,
            reason=reason,
            events=(
                ReauthRequired(
                    tenant_id=row.tenant_id,
                    connection_id=row.id,
                    owner=row.owner,
                    provider=row.provider,
                    reason=reason,
                ),
                _refresh_failed(row, reason),
                audit(
                    row.tenant_id,
                    AuditAction.CONNECTION_REAUTH_REQUIRED,
                    connection_id=row.id,
                    provider=row.provider,
                    user_id=owner_user(row.owner),
                    detail={"reason": reason},
                ),
            ),
        )
    return RefreshOutcome(
        row.id,
        False,
        row.expires_at,
        ErrorReply.of(
            ErrorCode.REAUTH_REQUIRED, f"{row.provider} refused the refresh; the user must re-authorize"
        ),
    )


async def failed(
    ctx: VaultContext, row: Any, fence: int, error: str, *, keep_attempt: bool = False
) -> RefreshOutcome:
    """This attempt failed but a later one may succeed: release the lease, with the failure's event."""
    async with ctx.single_statement() as conn:
        await refresh_rows.release(
            conn,
            row.id,
            ctx.instance_id,
            fence,
            events=(_refresh_failed(row, error),),
            keep_attempt=keep_attempt,
        )
    return RefreshOutcome(
        row.id,
        False,
        row.expires_at,
        ErrorReply.of(
            ErrorCode.PROVIDER_UNAVAILABLE, f"{row.provider} could not refresh the token ({error})"
        ),
    )


async def release(ctx: VaultContext, connection_id: str, fence: int) -> None:
    """Give the lease back with nothing changed (nothing was due, or nothing could be done)."""
    async with ctx.single_statement(wake_relay=False) as conn:
        await refresh_rows.release(conn, connection_id, ctx.instance_id, fence)


async def retrying(
    ctx: VaultContext,
    statement: Callable[[DriverConnection], Awaitable[_T]],
    *,
    wake_relay: bool,
    for_seconds: float,
) -> _T:
    """Run a one-statement unit of work, again on a fresh connection when the connection failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + for_seconds
    delay = 0.05
    while True:
        try:
            async with ctx.single_statement(wake_relay=wake_relay) as conn:
                return await statement(conn)
        except psycopg.OperationalError as error:
            if loop.time() + delay > deadline:
                raise
            log.warning("refresh statement failed; retrying", extra={"error": type(error).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def error_for_status(row: Any) -> ErrorReply | None:
    """The error a connection's status is on its own (revoked, reauth required, not active), if any."""
    if row.status == ConnectionStatus.REVOKED:
        return ErrorReply.of(ErrorCode.REVOKED, "the connection was revoked")
    if row.status == ConnectionStatus.REAUTH_REQUIRED:
        return ErrorReply.of(ErrorCode.REAUTH_REQUIRED, "the user must re-authorize this connection")
    if row.status != ConnectionStatus.ACTIVE:
        return ErrorReply.of(ErrorCode.NOT_CONNECTED, "the connection is not active")
    return None


def _refresh_failed(row: Any, error: str) -> AuditRecord:
    return audit(
        row.tenant_id,
        AuditAction.TOKEN_REFRESH_FAILED,
        connection_id=row.id,
        provider=row.provider,
        user_id=owner_user(row.owner),
        outcome="failure",
        detail={"error": error},
    )
