"""Connect sessions: short-lived, single-user tokens an end user's browser may hold, and what they do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

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


@dataclass(frozen=True)
class IssuedConnectSession:
    session_id: str
    token: str
    expires_at: datetime
    connect_url: str


async def create_connect_session(
    session: AsyncSession,
    *,
    tenant_id: str,
    user_id: str,
    expires_in: int | None,
    default_ttl: int,
    max_ttl: int,
    public_url: str,
) -> IssuedConnectSession:
    """Mint a connect session for one user; the token is returned once and stored hashed."""
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
    )
    await flow_store.insert_connect_session(
        session, token_hash=credential_hash(token), record=record, now=now
    )
    connect_url = f"{public_url.rstrip('/')}/connect?{urlencode({'connect_session': token})}"
    return IssuedConnectSession(record.session_id, token, record.expires_at, connect_url)


async def open_connect_link(
    session: AsyncSession, token: str, *, now: datetime | None = None
) -> flow_store.ConnectSession | None:
    """The connect session a link's token stands for, or None when unknown, malformed, expired or used.

    Opening a link signs nobody in: the user first confirms who they connect as
    (`confirm_connect_link`), so a link someone else sent cannot silently act as them.
    """
    if not (looks_like_credential(token) and is_connect_session_token(token)):
        return None
    record = await flow_store.connect_session_by_hash(session, credential_hash(token))
    if record is None or record.link_used or record.expires_at <= (now or datetime.now(UTC)):
        return None
    return record


async def confirm_connect_link(session: AsyncSession, session_id: str, *, now: datetime) -> datetime | None:
    """Use a connect link for its one browser session: the session's expiry, None when used or expired."""
    return await flow_store.use_connect_link(session, session_id, now=now)


async def tenant_name(session: AsyncSession, tenant_id: str) -> str:
    """The name the confirm page shows for the tenant a link belongs to."""
    tenant = await tenant_store.tenant_by_id(session, tenant_id)
    return tenant.name if tenant else tenant_id


async def scopes_to_request(
    gw: Gateway, caller: Principal, provider: str, connection_id: str | None
) -> tuple[CatalogueView, list[str]]:
    """Exactly the scopes a user's flow will ask for: the app's defaults, plus what was granted before."""
    catalogue = await catalogue_view(gw, caller)
    definition = next((p for p in catalogue.providers if p.id == provider), None)
    if definition is None or not is_connectable(definition):
        raise Problem(404, "not_found", "this provider is not available")
    app = await get_provider_app(gw, caller, provider)
    defaults = list(app.scopes) or default_scope_ids(definition)
    if connection_id is None:
        return catalogue, defaults
    existing = await visible_connection(gw, caller, connection_id)
    if existing.provider != provider:
        raise Problem(404, "not_found", "connection not found")
    return catalogue, scopes_for_reauthorization(existing.scopes, [], defaults)
