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
from datetime import UTC, datetime
from functools import partial
from typing import Any

from grantline.contract.errors import ErrorCode, ErrorReply

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.providers.definition import ProviderDefinition
from grantline.providers.token_response import TokenResponseError
from grantline.vault.adapters import refresh_rows
from grantline.vault.adapters.provider_client import ProviderUnavailable
from grantline.vault.domain import DecryptionError
from grantline.vault.domain.connection_rules import (
    REFRESH_OUTCOME_UNKNOWN,
    may_present_again,
    needs_refresh,
)
from grantline.vault.domain.data_key_versions import TenantDataKeys
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.mcp_servers import rediscover_after_refusal
from grantline.vault.service.refresh_outcomes import (
    RefreshOutcome,
    current_state,
    error_for_status,
    failed,
    mark_reauth,
    release,
    retrying,
    store_tokens,
)
from grantline.vault.service.sealing import TOKEN_COLUMNS, opened_refresh_inputs

log = logging.getLogger(__name__)
_LEASE_POLL_SECONDS = 0.05
# The lease outlives the provider call by this much, so the call's outcome can be written under it.
_LEASE_MARGIN_SECONDS = 2.0
# How long taking a lease is retried over broken connections before the request fails (the caller,
# a refresher or a resolve, retries later in its own way).
_RECONNECT_SECONDS = 2.0


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
        row = await retrying(
            self._ctx,
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
        status_error = error_for_status(row)
        if status_error is not None:
            await release(self._ctx, row.id, row.version)
            return RefreshOutcome(row.id, False, row.expires_at, error=status_error)
        return await mark_reauth(self._ctx, row, row.version, reason)

    async def _refresh_once(
        self, tenant_id: str, connection_id: str, force: bool, before: datetime | None
    ) -> RefreshOutcome:
        ctx = self._ctx
        deadline = asyncio.get_running_loop().time() + ctx.settings.refresh_lease_seconds + 5
        while True:
            row = await retrying(
                ctx,
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
        status_error = error_for_status(row)
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
                return await mark_reauth(ctx, row, fence, "no_refresh_token")
            await release(ctx, row.id, fence)
            return RefreshOutcome(row.id, False, row.expires_at, error=status_error)
        try:
            definition = ctx.definition(row.provider, row.provider_definition or row.tenant_definition)
        except (UnknownProvider, CatalogueError):
            await release(ctx, row.id, fence)
            return RefreshOutcome(
                row.id, False, row.expires_at, ErrorReply.of(ErrorCode.INTERNAL, "unknown provider")
            )
        if definition.refresh.non_expiring:
            await release(ctx, row.id, fence)
            return RefreshOutcome(row.id, False, row.expires_at)
        if row.app_id is None or not row.app_enabled:
            await release(ctx, row.id, fence)
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
            return await mark_reauth(ctx, row, fence, REFRESH_OUTCOME_UNKNOWN)
        budget = float(ctx.settings.refresh_lease_seconds)
        async with ctx.single_statement(wake_relay=False) as conn:
            begun = await refresh_rows.begin_attempt(
                conn, row.id, ctx.instance_id, fence, seconds=budget + _LEASE_MARGIN_SECONDS
            )
        if not begun:
            return await current_state(ctx, row)
        try:
            async with asyncio.timeout(budget):
                tokens = await ctx.providers.refresh(definition, client, previous)
        except TimeoutError:
            return await self._answer_lost(row, fence, definition)
        except TokenResponseError as error:
            if error.is_invalid_grant:
                return await mark_reauth(ctx, row, fence, error.error)
            if error.error == "invalid_client" and row.provider_definition:
                # An MCP server forgot the client Grantline registered (its refresh tokens die with it):
                # register anew, once, so the user can connect again.
                rediscovered = await rediscover_after_refusal(ctx, row.tenant_id, row.provider_definition)
                if rediscovered is not None:
                    return await mark_reauth(ctx, row, fence, "invalid_client_registered_again")
            return await failed(ctx, row, fence, error.error)
        except ProviderUnavailable:
            return await failed(ctx, row, fence, "provider_unavailable")
        return await store_tokens(ctx, row, fence, key, tokens)

    async def _answer_lost(self, row: Any, fence: int, definition: ProviderDefinition) -> RefreshOutcome:
        """The provider did not answer within the lease: it may have spent the refresh token."""
        log.warning("refresh answer later than the lease: outcome unknown", extra={"connection_id": row.id})
        started = row.refresh_started_at or datetime.now(UTC)
        if not may_present_again(definition, started):
            return await mark_reauth(self._ctx, row, fence, REFRESH_OUTCOME_UNKNOWN)
        # Presentable again (not rotating, or inside the grace period): the next attempt retries;
        # for a rotating token the mark stays, so the grace period is counted from its first use.
        return await failed(
            self._ctx, row, fence, REFRESH_OUTCOME_UNKNOWN, keep_attempt=definition.refresh.rotating
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
        await release(self._ctx, row.id, fence)
        return RefreshOutcome(
            row.id, False, row.expires_at, ErrorReply.of(ErrorCode.INTERNAL, "internal error")
        )
