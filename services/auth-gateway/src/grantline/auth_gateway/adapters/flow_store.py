"""Pending authorizations (hashed `state` + PKCE verifier) and connect sessions (hashed tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters.tables import connect_sessions, pending_authorizations
from grantline.auth_gateway.domain.oauth_state import PendingAuthorization


@dataclass(frozen=True)
class StoredPending:
    """A pending authorization and what the gateway keeps beside the domain's fields."""

    pending: PendingAuthorization
    reauthorize: bool
    name: str | None
    settings: dict[str, str]
    expected_account: str | None = None
    expected_domain: str | None = None
    replace_scopes: bool = False
    provider_app: str | None = None


async def insert_pending(
    session: AsyncSession,
    pending: PendingAuthorization,
    *,
    reauthorize: bool,
    name: str | None,
    settings: dict[str, str],
    expected_account: str | None = None,
    expected_domain: str | None = None,
    replace_scopes: bool = False,
    provider_app: str | None = None,
) -> None:
    """Store a started flow under its state hash."""
    verifier = pending.code_verifier.get_secret_value() if pending.code_verifier else None
    await session.execute(
        insert(pending_authorizations).values(
            state_hash=pending.state_hash,
            tenant_id=pending.tenant_id,
            owner=pending.owner,
            provider=pending.provider,
            connection_id=pending.connection_id,
            scopes=list(pending.scopes),
            redirect_uri=pending.redirect_uri,
            return_to=pending.return_to,
            code_verifier=verifier,
            reauthorize=reauthorize,
            name=name,
            settings=settings,
            expected_account=expected_account,
            expected_domain=expected_domain,
            replace_scopes=replace_scopes,
            provider_app=provider_app,
            created_at=pending.created_at,
            expires_at=pending.expires_at,
            browser_binding=pending.browser_binding,
        )
    )


def _pending(row: Any) -> StoredPending:
    pending = PendingAuthorization(
        state_hash=row.state_hash,
        tenant_id=row.tenant_id,
        owner=row.owner,
        provider=row.provider,
        connection_id=row.connection_id,
        scopes=tuple(row.scopes or ()),
        redirect_uri=row.redirect_uri,
        return_to=row.return_to,
        code_verifier=SecretStr(row.code_verifier) if row.code_verifier else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        browser_binding=row.browser_binding,
    )
    return StoredPending(
        pending,
        bool(row.reauthorize),
        row.name,
        dict(row.settings or {}),
        row.expected_account,
        row.expected_domain,
        bool(row.replace_scopes),
        row.provider_app,
    )


async def pending_by_hash(
    session: AsyncSession, state_hash: str, *, lock: bool = False
) -> StoredPending | None:
    """The pending authorization stored under this state hash, or None (optionally row-locked)."""
    query = select(pending_authorizations).where(pending_authorizations.c.state_hash == state_hash)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _pending(row) if row else None


async def consume_pending(session: AsyncSession, state_hash: str, *, now: datetime) -> bool:
    """Mark a state used, atomically: True only for the one caller that consumed it."""
    result = await session.execute(
        update(pending_authorizations)
        .where(
            pending_authorizations.c.state_hash == state_hash,
            pending_authorizations.c.used_at.is_(None),
            pending_authorizations.c.expires_at > now,
        )
        .values(used_at=now, code_verifier=None)
        .returning(pending_authorizations.c.state_hash)
    )
    return result.first() is not None


async def delete_expired_pending(session: AsyncSession, *, before: datetime) -> int:
    """Forget flows that expired before `before` (kept a while so a late callback says 'expired')."""
    result = await session.execute(
        delete(pending_authorizations).where(pending_authorizations.c.expires_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class ConnectSession:
    session_id: str
    tenant_id: str
    user_id: str
    expires_at: datetime
    link_used: bool = False
    # The providers the session may list and connect; None: every provider of the tenant.
    providers: tuple[str, ...] | None = None
    run_id: str | None = None
    # (provider, named app) pairs its new connections use; others use the provider's default app.
    provider_apps: tuple[tuple[str, str], ...] = ()


async def insert_connect_session(
    session: AsyncSession, *, token_hash: str, record: ConnectSession, now: datetime
) -> None:
    """Store a connect session under its token hash."""
    await session.execute(
        insert(connect_sessions).values(
            token_hash=token_hash,
            session_id=record.session_id,
            tenant_id=record.tenant_id,
            user_id=record.user_id,
            created_at=now,
            expires_at=record.expires_at,
            providers=list(record.providers) if record.providers is not None else None,
            run_id=record.run_id,
            provider_apps=dict(record.provider_apps) or None,
        )
    )


async def connect_session_by_hash(session: AsyncSession, token_hash: str) -> ConnectSession | None:
    """The connect session stored under this token hash (expired or not), or None."""
    row = (
        await session.execute(select(connect_sessions).where(connect_sessions.c.token_hash == token_hash))
    ).first()
    if row is None:
        return None
    return ConnectSession(
        row.session_id,
        row.tenant_id,
        row.user_id,
        row.expires_at,
        row.link_used_at is not None,
        tuple(row.providers) if row.providers is not None else None,
        row.run_id,
        tuple(sorted((row.provider_apps or {}).items())),
    )


async def use_connect_link(session: AsyncSession, session_id: str, *, now: datetime) -> datetime | None:
    """Mark a connect link exchanged, atomically: the session's expiry for the one caller that used it."""
    result = await session.execute(
        update(connect_sessions)
        .where(
            connect_sessions.c.session_id == session_id,
            connect_sessions.c.link_used_at.is_(None),
            connect_sessions.c.expires_at > now,
        )
        .values(link_used_at=now)
        .returning(connect_sessions.c.expires_at)
    )
    row = result.first()
    return row.expires_at if row else None


async def delete_expired_connect_sessions(session: AsyncSession, *, before: datetime) -> int:
    """Forget connect sessions that expired before `before`."""
    result = await session.execute(delete(connect_sessions).where(connect_sessions.c.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
