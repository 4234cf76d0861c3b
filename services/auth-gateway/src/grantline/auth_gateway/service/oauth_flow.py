"""The authorization-code flow: start it (authorize URL + pending state), then finish it via the vault.

Finishing is two steps on purpose: `claim` consumes the single-use state in its own transaction
(committed by the caller before anything else happens), then `exchange` hands the code to the
vault. Two callbacks racing with one state can never both reach the vault.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters import flow_store, tenant_store
from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.adapters.tables import outbox
from grantline.auth_gateway.domain.incremental_scopes import scopes_for_reauthorization
from grantline.auth_gateway.domain.oauth_state import (
    StateError,
    StateErrorCode,
    check_browser,
    check_issuer,
    check_pending,
    code_challenge_s256,
    new_code_verifier,
    new_pending_authorization,
    new_state,
    state_hash_for_lookup,
)
from grantline.auth_gateway.domain.return_to import ReturnToError, check_return_to
from grantline.auth_gateway.service.catalogue import TenantCatalogue
from grantline.auth_gateway.service.principal import Principal, connection_visible_to
from grantline.auth_gateway.service.problems import Problem, invalid, not_found
from grantline.common.contract import vault, vault_admin
from grantline.common.contract.audit import AuditAction, AuditRecord
from grantline.common.contract.errors import ErrorReply
from grantline.common.outbox import add_event
from grantline.providers.authorize import SettingsError, build_authorize_url, resolve_settings

# OAuth error codes a provider may send back (RFC 6749 section 4.1.2.1); anything else is reported
# as `provider_error` so no provider-chosen text reaches the browser's address bar.
_PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "consent_required",
        "login_required",
        "interaction_required",
    }
)
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 scope-token
MAX_SCOPES = 100


@dataclass(frozen=True)
class InitiateInput:
    provider: str
    return_to: str
    user_id: str | None = None
    workspace: bool = False
    scopes: list[str] | None = None
    connection_id: str | None = None


@dataclass(frozen=True)
class Initiated:
    authorize_url: str
    expires_at: datetime
    connection_id: str
    reauthorize: bool
    scopes: list[str]


@dataclass(frozen=True)
class Outcome:
    """How a finished flow ends; `return_to` is where the browser goes (None: no known destination)."""

    status: str  # "connected" or "error"
    return_to: str | None
    connection_id: str | None = None
    provider: str | None = None
    error: str | None = None
    connection: vault.ConnectionInfo | None = None


class FlowRefused(Exception):
    """The callback cannot proceed; `return_to` is set when the state was ours and still says where."""

    def __init__(self, code: str, return_to: str | None = None, connection_id: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.return_to = return_to
        self.connection_id = connection_id


def _checked_scopes(scopes: list[str]) -> list[str]:
    split = [part for scope in scopes for part in scope.split()]
    if len(split) > MAX_SCOPES:
        raise invalid(f"at most {MAX_SCOPES} scopes")
    bad = [scope for scope in split if not _SCOPE.fullmatch(scope)]
    if bad:
        raise invalid("scopes must be non-empty OAuth scope tokens")
    return list(dict.fromkeys(split))


class OAuthFlow:
    def __init__(
        self,
        *,
        bus: Bus,
        catalogue: TenantCatalogue,
        redirect_uri: str,
        own_return_to: tuple[str, ...] = (),
    ) -> None:
        self._bus = bus
        self._catalogue = catalogue
        self._redirect_uri = redirect_uri
        # The gateway's own pages (admin UI, connect pages): always a safe place to come back to.
        self._own_return_to = list(own_return_to)

    async def initiate(
        self,
        session: AsyncSession,
        principal: Principal,
        request: InitiateInput,
        *,
        browser_binding: str | None = None,
    ) -> Initiated:
        """Build the authorize URL and store the pending authorization it is bound to.

        `browser_binding` (the hash of the starting browser's flow cookie) is given by the pages: the
        callback then completes the flow only in that browser.
        """
        owner = principal.owner_for(user_id=request.user_id, workspace=request.workspace)
        definition = await self._catalogue.provider(principal.tenant_id, request.provider)
        if definition.oauth is None:
            raise invalid(f"provider {definition.id!r} uses API keys: POST /v1/connections/api-key")
        if not definition.enabled:
            raise invalid(f"provider {definition.id!r} is disabled in the catalogue")
        tenant = await tenant_store.tenant_by_id(session, principal.tenant_id)
        if tenant is None:
            raise not_found("tenant")
        try:
            return_to = check_return_to(
                request.return_to, [*tenant.return_to_allow_list, *self._own_return_to]
            )
        except ReturnToError as error:
            raise Problem(422, "return_to_not_allowed", str(error)) from None
        requested = _checked_scopes(request.scopes) if request.scopes is not None else None

        app = await self._provider_app(principal.tenant_id, definition.id)
        defaults = list(app.scopes) or list(definition.oauth.scopes.default)
        reauthorize, name = False, None
        if request.connection_id is not None:
            existing = await connection_visible_to(self._bus, principal, request.connection_id)
            if existing.owner != owner or existing.provider != definition.id:
                raise not_found("connection")
            scopes = scopes_for_reauthorization(existing.scopes, requested or [], defaults)
            connection_id, reauthorize, name = existing.connection_id, True, existing.name
        else:
            scopes = requested if requested is not None else defaults
            connection_id = str(uuid.uuid4())
        try:
            settings = resolve_settings(definition, app.settings)
        except SettingsError as error:
            raise Problem(409, "provider_app_misconfigured", str(error)) from None

        verifier = new_code_verifier() if definition.oauth.pkce != "none" else None
        state, state_hash = new_state()
        now = datetime.now(UTC)
        pending = new_pending_authorization(
            state_hash=state_hash,
            tenant_id=principal.tenant_id,
            owner=owner,
            provider=definition.id,
            connection_id=connection_id,
            scopes=scopes,
            redirect_uri=self._redirect_uri,
            return_to=return_to,
            code_verifier=verifier,
            now=now,
            browser_binding=browser_binding,
        )
        url = build_authorize_url(
            definition,
            client_id=app.client_id,
            redirect_uri=self._redirect_uri,
            scopes=scopes,
            state=state,
            code_challenge=code_challenge_s256(verifier) if verifier else None,
            settings=settings,
        )
        await flow_store.insert_pending(
            session, pending, reauthorize=reauthorize, name=name, settings=settings
        )
        await add_event(
            session,
            outbox,
            AuditRecord(
                tenant_id=principal.tenant_id,
                actor=principal.actor,
                action=AuditAction.CONNECTION_INITIATED,
                connection_id=connection_id,
                provider=definition.id,
                user_id=owner.removeprefix("user:") if owner.startswith("user:") else None,
                detail={"scopes": scopes, "reauthorize": reauthorize, "pkce": verifier is not None},
            ),
        )
        return Initiated(url, pending.expires_at, connection_id, reauthorize, scopes)

    async def _provider_app(self, tenant_id: str, provider: str) -> vault_admin.ProviderAppInfo:
        try:
            app = await self._bus.ask(
                vault_admin.SUBJECT_PROVIDER_APP_GET,
                vault_admin.ProviderAppRef(tenant_id=tenant_id, provider=provider),
                vault_admin.ProviderAppInfo,
            )
        except Problem as problem:
            if problem.status == 404:
                raise Problem(
                    409,
                    "provider_app_missing",
                    f"configure a provider app first: PUT /v1/provider-apps/{provider}",
                ) from None
            raise
        if not app.enabled:
            raise Problem(409, "provider_app_disabled", f"the provider app for {provider!r} is disabled")
        return app

    async def claim(
        self,
        session: AsyncSession,
        *,
        state: str | None,
        iss: str | None,
        tenant_id: str | None = None,
        principal: Principal | None = None,
        browser_binding: str | None = None,
        now: datetime | None = None,
    ) -> flow_store.StoredPending:
        """Check and consume a `state` (single use); raise `FlowRefused` and change nothing otherwise.

        `browser_binding` is the hash of the flow cookie the browser's callback brought, if any.
        """
        now = now or datetime.now(UTC)
        try:
            state_hash = state_hash_for_lookup(state)
        except StateError as error:
            raise FlowRefused(error.code.value) from None
        stored = await flow_store.pending_by_hash(session, state_hash, lock=True)
        try:
            check_pending(
                stored.pending if stored else None,
                now=now,
                tenant_id_expected=tenant_id,
                provider_expected=None,
            )
        except StateError as error:
            if error.code in (StateErrorCode.UNKNOWN_STATE, StateErrorCode.WRONG_TENANT) or stored is None:
                # Another tenant's state is indistinguishable from one that never existed.
                raise FlowRefused(StateErrorCode.UNKNOWN_STATE.value) from None
            raise FlowRefused(
                error.code.value, stored.pending.return_to, stored.pending.connection_id
            ) from None
        assert stored is not None
        pending = stored.pending
        if principal is not None and not principal.may_see(pending.owner):
            raise FlowRefused(StateErrorCode.UNKNOWN_STATE.value)
        try:
            check_browser(pending, browser_binding)
        except StateError as error:
            # Not consumed: the browser that started the flow may still finish it.
            raise FlowRefused(error.code.value, pending.return_to, pending.connection_id) from None
        definition = await self._catalogue.provider(pending.tenant_id, pending.provider)
        try:
            # A definition names an issuer only for providers that send `iss` (RFC 9207): then a
            # redirect without it is refused, or a mix-up attacker could simply strip it.
            issuer = definition.oauth.issuer if definition.oauth else None
            check_issuer(issuer, iss, iss_required=issuer is not None)
        except StateError as error:
            raise FlowRefused(error.code.value, pending.return_to, pending.connection_id) from None
        if not await flow_store.consume_pending(session, state_hash, now=now):
            raise FlowRefused(StateErrorCode.USED_STATE.value, pending.return_to, pending.connection_id)
        return stored

    async def exchange(
        self, stored: flow_store.StoredPending, code: str
    ) -> vault.ConnectionInfo | ErrorReply:
        """Hand the code to the vault; the reply is the connection or the vault's error."""
        pending = stored.pending
        request = vault.ExchangeRequest(
            tenant_id=pending.tenant_id,
            connection_id=pending.connection_id,
            owner=pending.owner,
            provider=pending.provider,
            code=SecretStr(code),
            code_verifier=pending.code_verifier,
            redirect_uri=pending.redirect_uri,
            requested_scopes=list(pending.scopes),
            reauthorize=stored.reauthorize,
            settings=stored.settings,
            name=stored.name,
        )
        return await self._bus.ask_or_error(
            vault.SUBJECT_EXCHANGE, request, vault.ConnectionInfo, with_secrets=True
        )


def provider_error_code(error: str) -> str:
    """The OAuth error a provider sent, if it is a standard one; else `provider_error`."""
    return error if error in _PROVIDER_ERRORS else "provider_error"
