"""`vault.resolve.<tenant>`: the acting user's token at tool-call time, inside the run's grant.

The run grant (signed by satisfaction at admission) says who acts: tenant, user, run and app, and
which providers (and scopes) the run may use. A request outside it is refused (`forbidden`): another
tenant than the subject's, a provider the grant does not list, scopes beyond it, an altered or
expired grant, or a run that has finished. Inside it, order: the user's own default connection to
the provider (or to the provider owning the app), else the workspace's when the provider app allows
fallback, else `not_connected`. Status and scopes are checked on every call against fresh rows; a
token expired or about to expire is refreshed inline (single flight, see refresh.py) before the
answer. Only this reply carries a token.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from grantline.common.contract.envelope import tenant_of
from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.registry import encode_message
from grantline.common.contract.run_grants import RunGrant
from grantline.common.contract.vault import ResolveRequest
from grantline.common.nats.consuming import validation_summary
from grantline.common.run_grants import GrantRejected, RunGrantVerifier
from grantline.vault.adapters.audit_buffer import AuditBuffer, fits_audit_record
from grantline.vault.adapters.resolve_reader import CandidateRow, DatabaseUnavailable, Lookup, ResolveReader
from grantline.vault.domain import DecryptionError, SealContext, SecretField, WrappedDataKey, open_sealed
from grantline.vault.domain.connection_rules import (
    WORKSPACE_OWNER,
    ConnectionStatus,
    is_expired,
    missing_scopes,
    needs_refresh,
    user_owner,
)
from grantline.vault.service.context import VaultContext
from grantline.vault.service.refresh import Refresher

log = logging.getLogger(__name__)

_OTHER_TENANT = ErrorReply.of(
    ErrorCode.FORBIDDEN, "the run grant is for another tenant than the subject the request came on"
)
_STATUS_ERRORS = {
    ConnectionStatus.REVOKED.value: (ErrorCode.REVOKED, "the connection was revoked"),
    ConnectionStatus.REAUTH_REQUIRED.value: (
        ErrorCode.REAUTH_REQUIRED,
        "the provider refused this connection's refresh token; the user must re-authorize",
    ),
}


@functools.lru_cache(maxsize=65_536)
def _seal_context(
    tenant_id: str, connection_id: str, owner: str, provider: str, field: SecretField
) -> SealContext:
    # Building a context (enum checks, associated data) cost more than the AES-GCM open itself; it
    # holds no secret and never changes for a connection, so recent ones are kept.
    return SealContext.for_connection(tenant_id, connection_id, owner=owner, provider=provider, field=field)


class ResolveService:
    """Serves resolve requests from raw bytes to raw reply bytes."""

    def __init__(
        self,
        ctx: VaultContext,
        reader: ResolveReader,
        refresher: Refresher,
        audit: AuditBuffer,
        grants: RunGrantVerifier,
    ) -> None:
        self._ctx = ctx
        self._grants = grants
        self._reader = reader
        self._refresher = refresher
        self._audit = audit
        self._margin = ctx.settings.refresh_margin_seconds
        self._accept_unbound = ctx.accept_unbound_seals

    async def handle(self, data: bytes, subject: str) -> tuple[bytes, str]:
        """Reply bytes for a request that came on ``subject``, and an outcome label for metrics."""
        try:
            request = ResolveRequest.model_validate_json(data)
        except ValidationError as error:
            reply = ErrorReply.of(ErrorCode.INVALID_REQUEST, f"invalid request: {validation_summary(error)}")
            return encode_message(reply), "rejected"
        try:
            grant = self._grants.verify(request.grant.get_secret_value())
        except GrantRejected as rejected:
            # Nothing in an unverified grant can be trusted, so there is no tenant to audit it under.
            log.info("resolve refused: %s", rejected.reason, extra={"subject": subject})
            return encode_message(ErrorReply.of(ErrorCode.FORBIDDEN, rejected.reason)), "error_reply"
        if grant.tenant_id != tenant_of(subject):
            # A runner publishes only on its own tenants' subjects; a grant of another tenant is not its.
            return encode_message(_OTHER_TENANT), "error_reply"
        if not fits_audit_record(grant.tenant_id, grant.user_id):
            # Longer ids exist nowhere (events cap them), and the resolve could not be audited.
            reply = ErrorReply.of(ErrorCode.INVALID_REQUEST, "invalid request: tenant_id or user_id too long")
            return encode_message(reply), "rejected"
        try:
            return await self.resolve(grant, request)
        except DatabaseUnavailable as error:
            return encode_message(ErrorReply.of(ErrorCode.INTERNAL, str(error))), "failed"

    async def resolve(self, grant: RunGrant, request: ResolveRequest) -> tuple[bytes, str]:
        """Check the grant covers the request, then find, check, refresh if due, decrypt, record, reply."""
        call = _Call(grant, request, self._ctx.provider_for(request.provider or request.app or ""))
        if not grant.covers(call.provider):
            return self._deny(
                call, None, ErrorCode.FORBIDDEN, f"the run grant does not cover {call.provider}"
            )
        beyond = grant.scopes_beyond(call.provider, request.scopes)
        if beyond:
            message = f"the run grant does not allow scope(s): {' '.join(beyond)}"
            return self._deny(call, None, ErrorCode.FORBIDDEN, message)
        lookup = await self._lookup(call)
        if lookup.run_finished:
            return self._deny(call, None, ErrorCode.FORBIDDEN, "the run has finished; its grant is spent")
        row = self._candidate(lookup, call.owner)
        if row is None:
            return self._deny(
                call, None, ErrorCode.NOT_CONNECTED, f"no {call.provider} connection for this user"
            )
        now = datetime.now(UTC)
        if row.auth_kind != "api_key" and needs_refresh(row.expires_at, now, self._margin):
            outcome = await self._refresher.refresh(grant.tenant_id, row.id)
            fresh = self._candidate(await self._lookup(call), call.owner)
            if fresh is None or fresh.id != row.id:
                return (
                    await self.resolve(grant, request)
                    if fresh is not None
                    else self._deny(
                        call, row.id, ErrorCode.NOT_CONNECTED, f"no {call.provider} connection for this user"
                    )
                )
            row = fresh
            if row.status == ConnectionStatus.ACTIVE and is_expired(row.expires_at, datetime.now(UTC)):
                error = outcome.error or ErrorReply.of(ErrorCode.PROVIDER_UNAVAILABLE, "token expired")
                return self._deny(call, row.id, error.error.code, error.error.message)
        status_error = _STATUS_ERRORS.get(row.status)
        if status_error is not None:
            return self._deny(call, row.id, *status_error)
        if row.status != ConnectionStatus.ACTIVE:
            return self._deny(call, row.id, ErrorCode.NOT_CONNECTED, "the connection is not active")
        missing = missing_scopes(row.scopes, request.scopes)
        if missing:
            return self._deny(
                call,
                row.id,
                ErrorCode.MISSING_SCOPES,
                f"the connection lacks scope(s): {' '.join(missing)}",
            )
        token = self._open(grant.tenant_id, call.provider, row)
        self._record(call, row.id, "success", {})
        reply = {
            "access_token": token,
            "token_type": row.token_type,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "scopes": row.scopes,
            "connection_id": row.id,
        }
        return json.dumps(reply, separators=(",", ":")).encode(), "ok"

    async def _lookup(self, call: _Call) -> Lookup:
        grant = call.grant
        return await self._reader.lookup(grant.tenant_id, call.owner, call.provider, grant.run_id)

    @staticmethod
    def _candidate(lookup: Lookup, owner: str) -> CandidateRow | None:
        rows = lookup.candidates
        own = next((row for row in rows if row.owner == owner), None)
        if own is not None:
            return own
        shared = next((row for row in rows if row.owner == WORKSPACE_OWNER), None)
        return shared if shared is not None and shared.fallback_allowed else None

    def _open(self, tenant_id: str, provider: str, row: CandidateRow) -> str:
        # The secret opens only for the owner and provider it was sealed for: `row.owner` is the
        # stored owner the lookup matched, `provider` the one it matched `c.provider` against.
        if row.data_key_id is None or row.master_key_id is None or row.wrapped is None:
            raise DecryptionError("tenant has no data key", reason="format")
        key = self._ctx.keys.unwrap(
            tenant_id, WrappedDataKey(row.master_key_id, row.data_key_id, bytes(row.wrapped))
        )
        if row.auth_kind == "api_key":
            context = _seal_context(tenant_id, row.id, row.owner, provider, SecretField.API_KEY)
            fields: dict[str, str] = json.loads(
                open_sealed(
                    key,
                    context=context,
                    sealed=bytes(row.api_key or b""),
                    accept_unbound=self._accept_unbound,
                )
            )
            return next(iter(fields.values()))
        context = _seal_context(tenant_id, row.id, row.owner, provider, SecretField.ACCESS_TOKEN)
        return open_sealed(
            key, context=context, sealed=bytes(row.access_token or b""), accept_unbound=self._accept_unbound
        )

    def _deny(
        self, call: _Call, connection_id: str | None, code: ErrorCode, message: str
    ) -> tuple[bytes, str]:
        self._record(call, connection_id, "denied", {"error": code.value})
        return encode_message(ErrorReply.of(code, message)), "error_reply"

    def _record(
        self,
        call: _Call,
        connection_id: str | None,
        outcome: str,
        detail: dict[str, Any],
    ) -> None:
        grant = call.grant
        self._audit.add(
            (
                grant.tenant_id,
                connection_id,
                call.provider,
                grant.user_id,
                grant.app_id,
                grant.run_id,
                call.request.tool,
                outcome,
                detail,
                datetime.now(UTC),
            )
        )


@dataclass(frozen=True, slots=True)
class _Call:
    """One resolve: the verified grant, the request, and the provider it names."""

    grant: RunGrant
    request: ResolveRequest
    provider: str

    @property
    def owner(self) -> str:
        return user_owner(self.grant.user_id)
