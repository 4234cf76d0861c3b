"""The authorization-code flow: start it (authorize URL + pending state), then finish it via the vault.

Finishing is two steps on purpose: `claim` consumes the single-use state in its own transaction
(committed by the caller before anything else happens), then `exchange` hands the code to the
vault. Two callbacks racing with one state can never both reach the vault.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from grantline.auth_gateway.adapters import flow_store, tenant_store
from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.adapters.outbox import OUTBOX
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
from grantline.auth_gateway.service.flow_apps import app_for_flow
from grantline.auth_gateway.service.flow_callback import FlowRefused
from grantline.auth_gateway.service.flow_request import (
    InitiateInput,
    check_hints,
    checked_scopes,
    connection_settings,
    narrowed_scopes,
)
from grantline.auth_gateway.service.mcp_servers import (
    McpConnectContext,
    client_metadata_url_for,
    server_to_connect,
)
from grantline.auth_gateway.service.principal import Principal, connection_visible_to
from grantline.auth_gateway.service.problems import Problem, invalid, not_found, provider_disabled
from grantline.contract import vault
from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.errors import ErrorReply
from grantline.providers.authorize import build_authorize_url, with_always_scopes
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import write_events


@dataclass(frozen=True)
class Initiated:
    authorize_url: str
    expires_at: datetime
    connection_id: str
    reauthorize: bool
    scopes: list[str]
    # The provider the connection is for: a catalogue MCP entry connects as the tenant's discovered server.
    provider: str = ""


class OAuthFlow:
    def __init__(
        self,
        *,
        bus: Bus,
        catalogue: TenantCatalogue,
        redirect_uri: str,
        own_return_to: tuple[str, ...] = (),
        public_url: str = "",
        mcp_rediscover_after: timedelta = timedelta(days=1),
    ) -> None:
        self._bus = bus
        self._catalogue = catalogue
        self._redirect_uri = redirect_uri
        # Remote MCP servers are (re)discovered through the vault when a user connects them.
        self._mcp = McpConnectContext(bus, catalogue, public_url, redirect_uri, mcp_rediscover_after)
        # The gateway's own pages (admin UI, connect pages): always a safe place to come back to.
        self._own_return_to = list(own_return_to)

    async def initiate(
        self,
        conn: DriverConnection,
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
        principal.require_connectable(request.provider)
        definition = await self._catalogue.provider(principal.tenant_id, request.provider)
        if definition.auth == "mcp_oauth":
            # A catalogue MCP entry known by URL only connects as the tenant's discovered server; a
            # discovered server whose metadata is stale is discovered again first.
            definition = await server_to_connect(self._mcp, principal, definition)
        if definition.oauth is None:
            raise invalid(f"provider {definition.id!r} uses API keys: POST /v1/connections/api-key")
        if not definition.enabled:
            raise provider_disabled(definition.id)
        tenant = await tenant_store.tenant_by_id(conn, principal.tenant_id)
        if tenant is None:
            raise not_found("tenant")
        try:
            return_to = check_return_to(
                request.return_to, [*tenant.return_to_allow_list, *self._own_return_to]
            )
        except ReturnToError as error:
            raise Problem(422, "return_to_not_allowed", str(error)) from None
        requested = checked_scopes(request.scopes) if request.scopes is not None else None

        existing = None
        provider_app = request.provider_app
        if principal.kind == "connect_session":
            # Which OAuth client a user's connection goes through is the tenant's choice, made when it
            # minted the session; the end user holding the session cannot pick another.
            pinned = principal.app_for(definition.id)
            if provider_app is not None and provider_app != pinned:
                raise Problem(403, "forbidden", "this connect session connects the provider with its own app")
            provider_app = pinned
        if request.connection_id is not None:
            existing = await connection_visible_to(self._bus, principal, request.connection_id)
            if existing.owner != owner or existing.provider != definition.id:
                raise not_found("connection")
            if request.provider_app is not None and request.provider_app != existing.provider_app:
                raise invalid("a connection keeps its provider app; start a new connection for another one")
            # Re-authorizing (step-up too) goes through the OAuth client the connection was made with.
            provider_app = existing.provider_app
        app = await app_for_flow(self._bus, principal.tenant_id, definition.id, provider_app)
        defaults = list(app.scopes) or list(definition.oauth.scopes.default)
        reauthorize, name, own_settings = False, request.name, dict(request.settings)
        if existing is not None:
            if request.settings and request.settings != existing.settings:
                raise invalid("a connection keeps its settings; start a new connection for other ones")
            if request.narrow:
                scopes = narrowed_scopes(definition, requested)
            else:
                scopes = scopes_for_reauthorization(existing.scopes, requested or [], defaults)
            connection_id, reauthorize = existing.connection_id, True
            name, own_settings = existing.name, dict(existing.settings)
        else:
            if request.narrow:
                raise invalid("narrow re-authorizes a connection: give its connection_id")
            scopes = requested if requested is not None else defaults
            connection_id = str(uuid.uuid4())
        scopes = with_always_scopes(definition, scopes)
        check_hints(definition, request)
        settings = connection_settings(definition, app.settings, own_settings)

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
            login_hint=request.login_hint,
            domain_hint=request.domain_hint,
        )
        await flow_store.insert_pending(
            conn,
            pending,
            reauthorize=reauthorize,
            name=name,
            settings=settings,
            expected_account=request.login_hint,
            expected_domain=request.domain_hint,
            replace_scopes=request.narrow,
            provider_app=provider_app,
        )
        await write_events(
            conn,
            OUTBOX,
            [
                AuditRecord(
                    tenant_id=principal.tenant_id,
                    actor=principal.actor,
                    action=AuditAction.CONNECTION_INITIATED,
                    connection_id=connection_id,
                    provider=definition.id,
                    user_id=owner.removeprefix("user:") if owner.startswith("user:") else None,
                    detail={
                        "scopes": scopes,
                        "reauthorize": reauthorize,
                        "pkce": verifier is not None,
                        **({"provider_app": provider_app} if provider_app is not None else {}),
                    },
                )
            ],
        )
        return Initiated(url, pending.expires_at, connection_id, reauthorize, scopes, definition.id)

    async def claim(
        self,
        conn: DriverConnection,
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
        stored = await flow_store.pending_by_hash(conn, state_hash, lock=True)
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
        if not await flow_store.consume_pending(conn, state_hash, now=now):
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
            expected_account=stored.expected_account,
            expected_domain=stored.expected_domain,
            replace_scopes=stored.replace_scopes,
            client_metadata_url=client_metadata_url_for(self._mcp.public_url, pending.tenant_id),
            provider_app=stored.provider_app,
        )
        return await self._bus.ask_or_error(
            vault.SUBJECT_EXCHANGE, request, vault.ConnectionInfo, with_secrets=True
        )
