"""Refreshing a connection's tokens: one refresh per connection at a time, in and across processes.

In a process, concurrent callers share one in-flight refresh (single flight). Across replicas, a
lease on the connection row (owner + expiry, with the row version as fencing token) lets one
replica call the provider; the others poll the row until the lease is released and use what the
winner committed. The winner commits the new tokens (a rotated refresh token included) before
anyone is answered, and its write only lands if its fence still holds.
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
from pydantic import SecretStr

from grantline.common.contract.audit import AuditAction, AuditRecord
from grantline.common.contract.connections import ReauthRequired, TokenRefreshed
from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.db.driver import DriverConnection

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import CatalogueError
from grantline.providers.token_response import ExternalAccount, TokenResponseError, TokenSet
from grantline.vault.adapters import refresh_rows
from grantline.vault.adapters.provider_client import ClientCredentials, ProviderUnavailable
from grantline.vault.domain import (
    DataKey,
    DecryptionError,
    SealContext,
    SecretField,
    WrappedDataKey,
    fingerprint,
)
from grantline.vault.domain.connection_rules import ConnectionStatus, needs_refresh
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.records import audit, owner_user
from grantline.vault.service.sealing import connection_row_context, open_value, seal_tokens

log = logging.getLogger(__name__)
_LEASE_POLL_SECONDS = 0.05
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
        key = _data_key(ctx, row)
        if key is None:
            # Sealed tokens without the tenant's data key: nothing can open them.
            return await self._unopenable(row, fence, "no_data_key")
        try:
            client, previous = _opened_secrets(key, row, accept_unbound=ctx.accept_unbound_seals)
        except DecryptionError as error:
            # Altered, moved to another owner or provider, or unbound while bound values are required.
            return await self._unopenable(row, fence, error.reason)
        try:
            tokens = await ctx.providers.refresh(definition, client, previous)
        except TokenResponseError as error:
            if error.is_invalid_grant:
                return await self._mark_reauth(row, fence, error.error)
            return await self._failed(row, fence, error.error)
        except ProviderUnavailable:
            return await self._failed(row, fence, "provider_unavailable")
        return await self._store(row, fence, key, tokens)

    async def _unopenable(self, row: Any, fence: int, reason: str) -> RefreshOutcome:
        log.error(
            "refresh impossible: the sealed secrets do not open",
            extra={"connection_id": row.id, "reason": reason},
        )
        await self._release(row.id, fence)
        return RefreshOutcome(
            row.id, False, row.expires_at, ErrorReply.of(ErrorCode.INTERNAL, "internal error")
        )

    async def _store(self, row: Any, fence: int, key: DataKey, tokens: TokenSet) -> RefreshOutcome:
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

    async def _failed(self, row: Any, fence: int, error: str) -> RefreshOutcome:
        ctx = self._ctx
        async with ctx.single_statement() as conn:
            await refresh_rows.release(
                conn,
                row.id,
                ctx.instance_id,
                fence,
                events=(_refresh_failed(row, error),),
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


def _data_key(ctx: VaultContext, row: Any) -> DataKey | None:
    if row.wrapped_data_key is None or row.data_key_id is None:
        return None
    wrapped = WrappedDataKey(row.master_key_id or "", row.data_key_id, bytes(row.wrapped_data_key))
    return ctx.keys.unwrap(row.tenant_id, wrapped)


_EMPTY = SecretStr("")


def _opened_secrets(key: DataKey, row: Any, *, accept_unbound: bool) -> tuple[ClientCredentials, TokenSet]:
    """The app's client credentials and the connection's current tokens, opened from the leased row."""
    # The client secret is bound to the provider it is sent to: this connection's.
    app_secret = SealContext.for_provider_app(row.tenant_id, row.app_id, provider=row.provider)
    client = ClientCredentials(
        client_id=row.client_id or "",
        client_secret=open_value(key, app_secret, row.client_secret, accept_unbound=accept_unbound) or _EMPTY,
        settings=dict(row.app_settings or {}),
    )
    sealed_at = partial(connection_row_context, row)
    previous = TokenSet(
        access_token=open_value(
            key, sealed_at(SecretField.ACCESS_TOKEN), row.access_token, accept_unbound=accept_unbound
        )
        or _EMPTY,
        refresh_token=open_value(
            key, sealed_at(SecretField.REFRESH_TOKEN), row.refresh_token, accept_unbound=accept_unbound
        ),
        id_token=open_value(
            key, sealed_at(SecretField.ID_TOKEN), row.id_token, accept_unbound=accept_unbound
        ),
        expires_at=row.expires_at,
        refresh_token_expires_at=row.refresh_token_expires_at,
        scopes=tuple(row.scopes or ()),
        account=ExternalAccount(id=row.account) if row.account else None,
    )
    return client, previous


def _status_error(row: Any) -> ErrorReply | None:
    if row.status == ConnectionStatus.REVOKED:
        return ErrorReply.of(ErrorCode.REVOKED, "the connection was revoked")
    if row.status == ConnectionStatus.REAUTH_REQUIRED:
        return ErrorReply.of(ErrorCode.REAUTH_REQUIRED, "the user must re-authorize this connection")
    if row.status != ConnectionStatus.ACTIVE:
        return ErrorReply.of(ErrorCode.NOT_CONNECTED, "the connection is not active")
    return None
