"""Refreshing a connection's tokens: one refresh per connection at a time, in and across processes.

In a process, concurrent callers share one in-flight refresh (single flight). Across replicas, a
lease on the connection row (owner + expiry, with the row version as fencing token) lets one
replica call the provider; the others poll the row until the lease is released and use what the
winner committed. The winner commits the new tokens (a rotated refresh token included) before
anyone is answered, and its write only lands if its fence still holds.

A provider call that may spend the refresh token is marked on the row first (`refresh_started_at`)
and the lease stretched over it; the call is abandoned when the lease would end. When its outcome
is never written (the replica was killed, or the answer came later than the lease), the next holder
finds the mark and follows the provider's policy: a token that does not rotate, or a rotated one
still inside the provider's reuse grace period, is presented again; otherwise the refresh token may
be spent, and the connection goes to `reauth_required` (reason `refresh_outcome_unknown`) with its
event, instead of presenting a token the provider would take for a stolen one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import psycopg

from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.connections import ReauthRequired, TokenRefreshed
from grantline.contract.errors import ErrorCode, ErrorReply

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.providers.definition import ProviderDefinition
from grantline.providers.token_response import TokenResponseError, TokenSet
from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import refresh_rows
from grantline.vault.adapters.provider_client import ProviderUnavailable
from grantline.vault.domain import DecryptionError, SecretField, fingerprint
from grantline.vault.domain.connection_rules import (
    REFRESH_OUTCOME_UNKNOWN,
    ConnectionStatus,
    may_present_again,
    needs_refresh,
)
from grantline.vault.domain.data_key_versions import TenantDataKeys
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.mcp_servers import rediscover_after_refusal
from grantline.vault.service.records import audit, owner_user
from grantline.vault.service.sealing import (
    TOKEN_COLUMNS,
    connection_row_context,
    opened_refresh_inputs,
    seal_tokens,
)

log = logging.getLogger(__name__)
_LEASE_POLL_SECONDS = 0.05
# The lease outlives the provider call by this much, so the call's outcome can be written under it.
_LEASE_MARGIN_SECONDS = 2.0
# How long taking a lease is retried over broken connections before the request fails (the caller,
# a refresher or a resolve, retries later in its own way).
_RECONNECT_SECONDS = 2.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh attempt came to: the connection's expiry now, or an error reply."""

    connection_id: str
    refreshed: bool
    expires_at: datetime | None = None
    error: ErrorReply | None = None


class Refresher:
    """Refreshes connections; `refresh` is safe to call concurrently for the same connection."""

    def __init__(self, ctx: VaultContext) -> None:
        self._ctx = ctx
        self._in_flight: dict[str, asyncio.Future[RefreshOutcome]] = {}

    async def refresh(
        self,
        tenant_id: str,
        connection_id: str,
        *,
        force: bool = False,
        only_if_expiring_before: datetime | None = None,
    ) -> RefreshOutcome:
        """Refresh if still needed; concurrent callers for one connection share one attempt."""
        running = self._in_flight.get(connection_id)
        if running is None:
            running = asyncio.ensure_future(
                self._refresh_once(tenant_id, connection_id, force, only_if_expiring_before)
            )
            self._in_flight[connection_id] = running
            running.add_done_callback(lambda _: self._in_flight.pop(connection_id, None))
        # Shielded: one waiter giving up must not cancel the refresh the others wait for.
        return await asyncio.shield(running)

    async def mark_dead(self, tenant_id: str, connection_id: str, reason: str) -> RefreshOutcome:
        """The provider refuses the connection's tokens (checked by the caller): as the lease holder,
        mark it `reauth_required` with the same events as a refused refresh."""
        row = await self._retrying(
            partial(
                refresh_rows.take_lease,
                tenant_id=tenant_id,
                connection_id=connection_id,
                owner=self._ctx.instance_id,
                seconds=self._ctx.settings.refresh_lease_seconds,
            ),
            wake_relay=False,
            for_seconds=_RECONNECT_SECONDS,
        )
        if row is None or row.id is None:
            # Gone, or a refresh is running elsewhere: its outcome decides, not this report.
            error = ErrorReply.of(ErrorCode.PROVIDER_UNAVAILABLE, "the connection is being refreshed")
            return RefreshOutcome(connection_id, False, error=error if row is not None else None)
        status_error = _status_error(row)
        if status_error is not None:
            await self._release(row.id, row.version)
            return RefreshOutcome(row.id, False, row.expires_at, error=status_error)
        return await self._mark_reauth(row, row.version, reason)

    async def _refresh_once(
        self, tenant_id: str, connection_id: str, force: bool, before: datetime | None
    ) -> RefreshOutcome:
        ctx = self._ctx
        deadline = asyncio.get_running_loop().time() + ctx.settings.refresh_lease_seconds + 5
        while True:
            row = await self._retrying(
                partial(
                    refresh_rows.take_lease,
                    tenant_id=tenant_id,
                    connection_id=connection_id,
                    owner=ctx.instance_id,
                    seconds=ctx.settings.refresh_lease_seconds,
                ),
                wake_relay=False,
                for_seconds=_RECONNECT_SECONDS,
            )
            if row is None:
                return RefreshOutcome(
                    connection_id, False, error=ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
                )
            if row.id is not None:
                return await self._as_lease_holder(row, force, before)
            # Another replica holds the lease: wait for it to finish, then use what it committed.
            if asyncio.get_running_loop().time() > deadline:
                return RefreshOutcome(
                    connection_id,
                    False,
                    error=ErrorReply.of(
                        ErrorCode.PROVIDER_UNAVAILABLE, "refresh still in progress elsewhere"
                    ),
                )
            await asyncio.sleep(_LEASE_POLL_SECONDS)
            force, before = False, None

    async def _as_lease_holder(self, row: Any, force: bool, before: datetime | None) -> RefreshOutcome:
        ctx = self._ctx
        fence = row.version
        now = datetime.now(UTC)
        status_error = _status_error(row)
        due = force or needs_refresh(row.expires_at, now, ctx.settings.refresh_margin_seconds)
        if before is not None:
            due = row.expires_at is not None and row.expires_at < before
        if status_error is not None or not due or row.refresh_token is None:
            if (
                status_error is None
                and due
                and row.refresh_token is None
                and row.expires_at is not None
                and row.expires_at <= now
            ):
                return await self._mark_reauth(row, fence, "no_refresh_token")
            await self._release(row.id, fence)
            return RefreshOutcome(row.id, False, row.expires_at, error=status_error)
        try:
            definition = ctx.definition(row.provider, row.provider_definition or row.tenant_definition)
        except (UnknownProvider, CatalogueError):
            await self._release(row.id, fence)
            return RefreshOutcome(
                row.id, False, row.expires_at, ErrorReply.of(ErrorCode.INTERNAL, "unknown provider")
            )
        if definition.refresh.non_expiring:
            await self._release(row.id, fence)
            return RefreshOutcome(row.id, False, row.expires_at)
        if row.app_id is None or not row.app_enabled:
            await self._release(row.id, fence)
            return RefreshOutcome(
                row.id,
                False,
                row.expires_at,
                ErrorReply.of(ErrorCode.REVOKED, "the provider app is disabled"),
            )
        # The seals this refresh may make are counted on the newest data key before the provider
        # call (a failed call leaves them counted: the per-version limit errs early, never late).
        async with ctx.single_statement(wake_relay=False) as conn:
            key = await ctx.keys.reserve(conn, row.tenant_id, TOKEN_COLUMNS)
        try:
            client, previous = opened_refresh_inputs(
                key, await self._app_keys(row, key), row, accept_unbound=ctx.accept_unbound_seals
            )
        except DecryptionError as error:
            # Altered, moved to another owner or provider, or unbound while bound values are required.
            return await self._unopenable(row, fence, error.reason)
        if row.refresh_started_at is not None and not may_present_again(definition, row.refresh_started_at):
            # An earlier call may have spent the token and its answer is lost: do not present it.
            return await self._mark_reauth(row, fence, REFRESH_OUTCOME_UNKNOWN)
        budget = float(ctx.settings.refresh_lease_seconds)
        async with ctx.single_statement(wake_relay=False) as conn:
            begun = await refresh_rows.begin_attempt(
                conn, row.id, ctx.instance_id, fence, seconds=budget + _LEASE_MARGIN_SECONDS
            )
        if not begun:
            return await self._current_state(row)
        try:
            async with asyncio.timeout(budget):
                tokens = await ctx.providers.refresh(definition, client, previous)
        except TimeoutError:
            return await self._answer_lost(row, fence, definition)
        except TokenResponseError as error:
            if error.is_invalid_grant:
                return await self._mark_reauth(row, fence, error.error)
            if error.error == "invalid_client" and row.provider_definition:
                # An MCP server forgot the client Grantline registered (its refresh tokens die with it):
                # register anew, once, so the user can connect again.
                rediscovered = await rediscover_after_refusal(ctx, row.tenant_id, row.provider_definition)
                if rediscovered is not None:
                    return await self._mark_reauth(row, fence, "invalid_client_registered_again")
            return await self._failed(row, fence, error.error)
        except ProviderUnavailable:
            return await self._failed(row, fence, "provider_unavailable")
        return await self._store(row, fence, key, tokens)

    async def _answer_lost(self, row: Any, fence: int, definition: ProviderDefinition) -> RefreshOutcome:
        """The provider did not answer within the lease: it may have spent the refresh token."""
        log.warning("refresh answer later than the lease: outcome unknown", extra={"connection_id": row.id})
        started = row.refresh_started_at or datetime.now(UTC)
        if not may_present_again(definition, started):
            return await self._mark_reauth(row, fence, REFRESH_OUTCOME_UNKNOWN)
        # Presentable again (not rotating, or inside the grace period): the next attempt retries;
        # for a rotating token the mark stays, so the grace period is counted from its first use.
        return await self._failed(
            row, fence, REFRESH_OUTCOME_UNKNOWN, keep_attempt=definition.refresh.rotating
        )

    async def _app_keys(self, row: Any, tenant_keys: TenantDataKeys) -> TenantDataKeys | None:
        """The keys the app's client secret is sealed with: the tenant's, or, for an operator's platform
        app, the platform's own (None when the platform has none: the secret cannot be opened)."""
        if row.app_owner is None or row.app_owner == row.tenant_id:
            return tenant_keys
        async with self._ctx.single_statement(wake_relay=False) as conn:
            return await self._ctx.keys.load(conn, row.app_owner)

    async def _unopenable(self, row: Any, fence: int, reason: str) -> RefreshOutcome:
        log.error(
            "refresh impossible: the sealed secrets do not open",
            extra={"connection_id": row.id, "reason": reason},
        )
        await self._release(row.id, fence)
        return RefreshOutcome(
            row.id, False, row.expires_at, ErrorReply.of(ErrorCode.INTERNAL, "internal error")
        )

    async def _store(self, row: Any, fence: int, key: TenantDataKeys, tokens: TokenSet) -> RefreshOutcome:
        ctx = self._ctx
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
                    "token_fingerprint": fingerprint(
                        ctx.fingerprint_key, tokens.access_token.get_secret_value()
                    ),
                    "refresh_token_rotated": tokens.refresh_token_rotated,
                },
            ),
        )
        # The provider has answered: for a rotating token the old refresh token is already spent, so
        # these tokens must land. A write that fails on a broken connection (Postgres restarting, a
        # failover) is retried while the lease lasts; under the fence no retry can land twice.
        stored = await self._retrying(
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
            return await self._current_state(row)
        return RefreshOutcome(row.id, True, tokens.expires_at)

    async def _current_state(self, row: Any) -> RefreshOutcome:
        """After losing the fence: answer with what the connection is now, not a guess.

        Only a revoked or reauth-required connection is an error; when another replica's refresh
        won, its expiry is the answer, so the refresher keeps the connection on its schedule.
        """
        async with self._ctx.single_statement(wake_relay=False) as conn:
            current = await refresh_rows.current_state(conn, row.tenant_id, row.id)
        if current is None:
            return RefreshOutcome(
                row.id, False, error=ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
            )
        return RefreshOutcome(row.id, False, current.expires_at, error=_status_error(current))

    async def _mark_reauth(self, row: Any, fence: int, reason: str) -> RefreshOutcome:
        ctx = self._ctx
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

    async def _failed(
        self, row: Any, fence: int, error: str, *, keep_attempt: bool = False
    ) -> RefreshOutcome:
        ctx = self._ctx
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

    async def _retrying(
        self, statement: Callable[[DriverConnection], Awaitable[_T]], *, wake_relay: bool, for_seconds: float
    ) -> _T:
        """Run a one-statement unit of work, again on a fresh connection when the connection failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + for_seconds
        delay = 0.05
        while True:
            try:
                async with self._ctx.single_statement(wake_relay=wake_relay) as conn:
                    return await statement(conn)
            except psycopg.OperationalError as error:
                if loop.time() + delay > deadline:
                    raise
                log.warning("refresh statement failed; retrying", extra={"error": type(error).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _release(self, connection_id: str, fence: int) -> None:
        async with self._ctx.single_statement(wake_relay=False) as conn:
            await refresh_rows.release(conn, connection_id, self._ctx.instance_id, fence)


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


def _status_error(row: Any) -> ErrorReply | None:
    if row.status == ConnectionStatus.REVOKED:
        return ErrorReply.of(ErrorCode.REVOKED, "the connection was revoked")
    if row.status == ConnectionStatus.REAUTH_REQUIRED:
        return ErrorReply.of(ErrorCode.REAUTH_REQUIRED, "the user must re-authorize this connection")
    if row.status != ConnectionStatus.ACTIVE:
        return ErrorReply.of(ErrorCode.NOT_CONNECTED, "the connection is not active")
    return None
