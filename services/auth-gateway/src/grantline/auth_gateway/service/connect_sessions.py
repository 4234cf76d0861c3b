"""Connect sessions: short-lived, single-user tokens an end user's browser may hold, and what they do."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from grantline.auth_gateway.adapters import flow_store, tenant_store
from grantline.auth_gateway.domain.credentials import (
    credential_hash,
    is_connect_session_token,
    looks_like_credential,
    new_connect_session_token,
)
from grantline.auth_gateway.domain.incremental_scopes import scopes_for_reauthorization
from grantline.auth_gateway.service.connections import visible_connection
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem, invalid
from grantline.auth_gateway.service.provider_apps import get_provider_app
from grantline.auth_gateway.service.tenant_providers import catalogue_view
from grantline.auth_gateway.service.views import CatalogueView, default_scope_ids, is_connectable
from grantline.contract.connect_links import ConnectLinkReply, ConnectLinkRequest
from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class IssuedConnectSession:
    session_id: str
    token: str
    expires_at: datetime
    connect_url: str


async def create_connect_session(
    conn: DriverConnection,
    *,
    tenant_id: str,
    user_id: str,
    expires_in: int | None,
    default_ttl: int,
    max_ttl: int,
    public_url: str,
    providers: tuple[str, ...] | None = None,
    run_id: str | None = None,
    provider_apps: tuple[tuple[str, str], ...] = (),
) -> IssuedConnectSession:
    """Mint a connect session for one user (optionally limited to ``providers``, new connections of
    some providers through named apps, as `session_scope` checked them); the token is returned once
    and stored hashed."""
    ttl = default_ttl if expires_in is None else expires_in
    if not 60 <= ttl <= max_ttl:
        raise invalid(f"expires_in must be between 60 and {max_ttl} seconds")
    now = datetime.now(UTC)
    token = new_connect_session_token()
    record = flow_store.ConnectSession(
        session_id=f"cs_{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        user_id=user_id,
        expires_at=now + timedelta(seconds=ttl),
        providers=providers,
        run_id=run_id,
        provider_apps=provider_apps,
    )
    await flow_store.insert_connect_session(conn, token_hash=credential_hash(token), record=record, now=now)
    connect_url = f"{public_url.rstrip('/')}/connect?{urlencode({'connect_session': token})}"
    return IssuedConnectSession(record.session_id, token, record.expires_at, connect_url)


# The scope travels in the connect page's signed cookie, beside ids of at most ~1,400 characters (a
# non-ASCII user id JSON-escaped), and browsers cap a cookie at 4 KB: entrypoints/ui/session_cookies.py.
MAX_SCOPE_CHARS = 1500


@dataclass(frozen=True)
class SessionScope:
    """What a connect session may connect, checked: its providers (None: all) and pinned apps."""

    providers: tuple[str, ...] | None
    provider_apps: tuple[tuple[str, str], ...]


async def session_scope(
    gw: Gateway, tenant_id: str, providers: Sequence[str] | None, provider_apps: Mapping[str, str]
) -> SessionScope:
    """Check a session's providers (each one the tenant can connect: its catalogue's or its own) and
    pinned apps (each an enabled named app of the tenant, for a provider the session may connect)."""
    scoped = tuple(dict.fromkeys(providers)) if providers is not None else None
    if len(json.dumps([scoped, provider_apps])) > MAX_SCOPE_CHARS:
        raise invalid("too many providers for one connect session: mint one per few providers")
    for provider in scoped or ():
        definition = await gw.catalogue.provider(tenant_id, provider)
        if not definition.enabled:
            raise invalid(f"provider {provider!r} is disabled in the catalogue")
    tenant = Principal(tenant_id, "api_key")
    for provider, name in provider_apps.items():
        if scoped is not None and provider not in scoped:
            raise invalid(f"provider_apps names {provider!r}, which the session may not connect")
        try:
            app = await get_provider_app(gw, tenant, provider, name=name)
        except Problem as problem:
            if problem.status != 404:
                raise
            raise invalid(f"the tenant has no provider app {name!r} for {provider!r}") from None
        if not app.enabled:
            raise invalid(f"the provider app {name!r} for {provider!r} is disabled")
    return SessionScope(scoped, tuple(sorted(provider_apps.items())))


async def mint_connect_link(gw: Gateway, request: ConnectLinkRequest) -> ConnectLinkReply:
    """A connect link for one user of the tenant, limited to the providers they lack (a held run's).

    Every provider must be one the tenant can connect (its catalogue's or its own), every pinned app
    one of its enabled named apps; the session is otherwise an ordinary connect session: the link is
    confirmed by POST and bound to that browser.
    """
    scope = await session_scope(gw, request.tenant_id, request.providers, request.provider_apps)
    async with gw.runtime.driver_transaction(wake_relay=False) as conn:
        if await tenant_store.tenant_by_id(conn, request.tenant_id) is None:
            raise Problem(404, "not_found", "tenant not found")
        issued = await create_connect_session(
            conn,
            tenant_id=request.tenant_id,
            user_id=request.user_id,
            expires_in=min(request.expires_in, gw.settings.connect_session_max_ttl_seconds),
            default_ttl=gw.settings.connect_session_ttl_seconds,
            max_ttl=gw.settings.connect_session_max_ttl_seconds,
            public_url=gw.settings.public_url,
            providers=scope.providers,
            run_id=request.run_id,
            provider_apps=scope.provider_apps,
        )
    return ConnectLinkReply(
        session_id=issued.session_id,
        url=issued.connect_url,
        expires_at=issued.expires_at,
        providers=list(scope.providers or ()),
    )


async def open_connect_link(
    conn: DriverConnection, token: str, *, now: datetime | None = None
) -> flow_store.ConnectSession | None:
    """The connect session a link's token stands for, or None when unknown, malformed, expired or used.

    Opening a link signs nobody in: the user first confirms who they connect as
    (`confirm_connect_link`), so a link someone else sent cannot silently act as them.
    """
    if not (looks_like_credential(token) and is_connect_session_token(token)):
        return None
    record = await flow_store.connect_session_by_hash(conn, credential_hash(token))
    if record is None or record.link_used or record.expires_at <= (now or datetime.now(UTC)):
        return None
    return record


async def confirm_connect_link(conn: DriverConnection, session_id: str, *, now: datetime) -> datetime | None:
    """Use a connect link for its one browser session: the session's expiry, None when used or expired."""
    return await flow_store.use_connect_link(conn, session_id, now=now)


async def tenant_name(conn: DriverConnection, tenant_id: str) -> str:
    """The name the confirm page shows for the tenant a link belongs to."""
    tenant = await tenant_store.tenant_by_id(conn, tenant_id)
    return tenant.name if tenant else tenant_id


async def scopes_to_request(
    gw: Gateway, caller: Principal, provider: str, connection_id: str | None
) -> tuple[CatalogueView, list[str]]:
    """Exactly the scopes a user's flow will ask for: the app's defaults, plus what was granted before."""
    catalogue = await catalogue_view(gw, caller)
    definition = next((p for p in catalogue.providers if p.id == provider), None)
    if definition is None or not is_connectable(definition):
        raise Problem(404, "not_found", "this provider is not available")
    if connection_id is None:
        app = await get_provider_app(gw, caller, provider, or_platform=True, name=caller.app_for(provider))
        return catalogue, list(app.scopes) or default_scope_ids(definition)
    existing = await visible_connection(gw, caller, connection_id)
    if existing.provider != provider:
        raise Problem(404, "not_found", "connection not found")
    # A connection made with a named app is re-authorized through it: its default scopes count.
    app = await get_provider_app(gw, caller, provider, or_platform=True, name=existing.provider_app)
    defaults = list(app.scopes) or default_scope_ids(definition)
    return catalogue, scopes_for_reauthorization(existing.scopes, [], defaults)
