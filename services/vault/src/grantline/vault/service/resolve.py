"""`vault.resolve.<tenant>`: the acting user's token at tool-call time, inside the run's grant.

The run grant (signed by satisfaction at admission) says who acts: tenant, user, run and app, and
which providers (and scopes) the run may use. A request outside it is refused (`forbidden`): another
tenant than the subject's, a provider the grant does not list, scopes beyond it, an altered or
expired grant, or a run that has finished. Inside it, order: the user's own default connection to
the provider (or to the provider owning the app), else the workspace's when the provider app allows
fallback, else `not_connected`; when the provider app forces the workspace connection and the
workspace has one, only the workspace's (satisfaction counts the same way: it learns of the force
from the workspace connection's events). Status and scopes are checked on every call against fresh rows; a
token expired or about to expire is refreshed inline (single flight, see refresh.py) before the
answer. Only this reply carries a token.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from grantline.contract.envelope import tenant_of
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.run_grants import RunGrant
from grantline.contract.vault import ReportRequest, ResolveRequest
from grantline.providers.authorize import SettingsError, render_template
from grantline.runtime.nats.consuming import validation_summary
from grantline.runtime.run_grants import GrantRejected, RunGrantVerifier
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
from grantline.vault.domain.data_key_versions import below_minimum_error
from grantline.vault.service.context import VaultContext
from grantline.vault.service.refresh import Refresher

log = logging.getLogger(__name__)


_Request = TypeVar("_Request", ResolveRequest, ReportRequest)


@dataclass(frozen=True, slots=True)
class Refused:
    """A request answered before any lookup: the reply bytes and the metrics outcome."""

    reply: bytes
    outcome: str


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
        admitted = self.admit(ResolveRequest, data, subject)
        if not isinstance(admitted, tuple):
            return admitted.reply, admitted.outcome
        grant, request = admitted
        try:
            return await self.resolve(grant, request)
        except DatabaseUnavailable as error:
            return encode_message(ErrorReply.of(ErrorCode.INTERNAL, str(error))), "failed"

    def admit(self, model: type[_Request], data: bytes, subject: str) -> tuple[RunGrant, _Request] | Refused:
        """The verified grant and the parsed request, or the refusal to answer (bad body or grant,
        another tenant's grant, ids too long to audit)."""
        try:
            request = model.model_validate_json(data)
        except ValidationError as error:
            reply = ErrorReply.of(ErrorCode.INVALID_REQUEST, f"invalid request: {validation_summary(error)}")
            return Refused(encode_message(reply), "rejected")
        try:
            grant = self._grants.verify(request.grant.get_secret_value())
        except GrantRejected as rejected:
            # Nothing in an unverified grant can be trusted, so there is no tenant to audit it under.
            log.info("resolve refused: %s", rejected.reason, extra={"subject": subject})
            return Refused(encode_message(ErrorReply.of(ErrorCode.FORBIDDEN, rejected.reason)), "error_reply")
        if grant.tenant_id != tenant_of(subject):
            # A runner publishes only on its own tenants' subjects; a grant of another tenant is not its.
            return Refused(encode_message(_OTHER_TENANT), "error_reply")
        if not fits_audit_record(grant.tenant_id, grant.user_id):
            # Longer ids exist nowhere (events cap them), and the resolve could not be audited.
            reply = ErrorReply.of(ErrorCode.INVALID_REQUEST, "invalid request: tenant_id or user_id too long")
            return Refused(encode_message(reply), "rejected")
        return grant, request

    async def current_connection(self, grant: RunGrant, request: ResolveRequest) -> CandidateRow | None:
        """The connection a resolve of ``request`` would use now (None: none, or the run finished)."""
        call = _Call(grant, request, self._ctx.provider_for(request.provider or request.app or ""))
        lookup = await self._lookup(call)
        return None if lookup.run_finished else self._candidate(lookup, call.owner)

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
            return self._deny(call, None, ErrorCode.NOT_CONNECTED, _not_connected(call))
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
        missing = missing_scopes(row.held_scopes, request.scopes)
        if missing:
            return self._deny(
                call,
                row.id,
                ErrorCode.MISSING_SCOPES,
                f"the connection lacks scope(s): {' '.join(missing)}",
            )
        try:
            token, fields = self._open(grant.tenant_id, call.provider, row)
        except DecryptionError as error:
            if error.reason != "below_min_decryption_version":
                raise
            # The tenant retired the data key version that sealed this secret (`grantline keys
            # set-min-decryption-version`): say so; the message names versions, never a secret.
            return self._deny(call, row.id, ErrorCode.REAUTH_REQUIRED, str(error))
        self._record(call, row.id, "success", {})
        reply: dict[str, Any] = {
            "access_token": token,
            "fields": fields,
            "token_type": row.token_type,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "scopes": row.held_scopes,
            "connection_id": row.id,
        }
        server_url = row.mcp_server_url or self._catalogue_mcp_url(call.provider)
        if server_url:
            reply["mcp_server_url"] = server_url
        # The connection's settings travel with every reply that has some (a tool builds its URLs from
        # them); the proxy's `include_settings` asks for the key even when there are none.
        if row.settings or request.include_settings:
            reply["settings"] = row.settings or {}
        if row.settings:
            base_url = self._api_base_url(call.provider, row.settings)
            if base_url:
                reply["api_base_url"] = base_url
        return json.dumps(reply, separators=(",", ":")).encode(), "ok"

    def _catalogue_mcp_url(self, provider: str) -> str | None:
        definition = self._ctx.catalogue.find(provider)
        return definition.mcp_server_url if definition is not None else None

    def _api_base_url(self, provider: str, settings: dict[str, str]) -> str | None:
        definition = self._ctx.catalogue.find(provider)
        if definition is None or not definition.api_base_url:
            return None
        try:
            return render_template(definition.api_base_url, settings)
        except SettingsError:
            return None  # a setting the template needs was never found (an older connection)

    async def _lookup(self, call: _Call) -> Lookup:
        grant, request = call.grant, call.request
        return await self._reader.lookup(
            grant.tenant_id,
            call.owner,
            call.provider,
            grant.run_id,
            connection_id=request.connection_id,
            account=request.account,
        )

    @staticmethod
    def _candidate(lookup: Lookup, owner: str) -> CandidateRow | None:
        rows = lookup.candidates
        shared = next((row for row in rows if row.owner == WORKSPACE_OWNER), None)
        if shared is not None and shared.workspace_forced:
            return shared  # the tenant forced the shared connection: a user's own does not count
        own = next((row for row in rows if row.owner == owner), None)
        if own is not None:
            return own
        return shared if shared is not None and shared.fallback_allowed else None

    def _open(self, tenant_id: str, provider: str, row: CandidateRow) -> tuple[str, dict[str, str]]:
        # The secret opens only for the owner and provider it was sealed for: `row.owner` is the
        # stored owner the lookup matched, `provider` the one it matched `c.provider` against.
        if row.data_key_id is None or row.master_key_id is None or row.wrapped is None:
            raise DecryptionError("the data key the secret names is not the tenant's", reason="format")
        if row.data_key_retired and row.data_key_version is not None:
            raise below_minimum_error(row.data_key_version)
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
            return next(iter(fields.values())), fields
        context = _seal_context(tenant_id, row.id, row.owner, provider, SecretField.ACCESS_TOKEN)
        token = open_sealed(
            key, context=context, sealed=bytes(row.access_token or b""), accept_unbound=self._accept_unbound
        )
        return token, {}

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


def _not_connected(call: _Call) -> str:
    # A named connection of another user or provider reads exactly like one that does not exist.
    if call.request.connection_id:
        return f"this user has no {call.provider} connection {call.request.connection_id}"
    if call.request.account:
        return f"this user has no {call.provider} connection for that account"
    return f"no {call.provider} connection for this user"


@dataclass(frozen=True, slots=True)
class _Call:
    """One resolve: the verified grant, the request, and the provider it names."""

    grant: RunGrant
    request: ResolveRequest
    provider: str

    @property
    def owner(self) -> str:
        return user_owner(self.grant.user_id)
