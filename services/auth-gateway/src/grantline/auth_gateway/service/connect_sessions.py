"""Connect sessions: short-lived, single-user tokens an end user's browser may hold."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters import flow_store
from grantline.auth_gateway.domain.credentials import credential_hash, new_connect_session_token
from grantline.auth_gateway.service.problems import invalid


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
