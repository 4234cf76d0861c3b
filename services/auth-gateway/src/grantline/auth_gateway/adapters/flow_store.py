"""Pending authorizations (hashed `state` + PKCE verifier) and connect sessions (hashed tokens).

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
gateway never loads SQLAlchemy (adapters/tables.py declares the tables for the migrations only).
JSON columns take ``Jsonb`` parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import kwargs_row
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from grantline.auth_gateway.adapters.rate_limit_store import (
    EXHAUSTED,
    Guard,
    guard_parameters,
    raise_if_exhausted,
)
from grantline.auth_gateway.domain.oauth_state import PendingAuthorization
from grantline.runtime.db.driver import DriverConnection


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


_INSERT_PENDING = """
    INSERT INTO gateway.pending_authorizations
           (state_hash, tenant_id, owner, provider, connection_id, scopes, redirect_uri, return_to,
            code_verifier, reauthorize, name, settings, expected_account, expected_domain,
            replace_scopes, provider_app, created_at, expires_at, browser_binding)
    VALUES (%(state_hash)s, %(tenant_id)s, %(owner)s, %(provider)s, %(connection_id)s, %(scopes)s,
            %(redirect_uri)s, %(return_to)s, %(code_verifier)s, %(reauthorize)s, %(name)s, %(settings)s,
            %(expected_account)s, %(expected_domain)s, %(replace_scopes)s, %(provider_app)s,
            %(created_at)s, %(expires_at)s, %(browser_binding)s)
    """


async def insert_pending(
    conn: DriverConnection,
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
    params = {
        "state_hash": pending.state_hash,
        "tenant_id": pending.tenant_id,
        "owner": pending.owner,
        "provider": pending.provider,
        "connection_id": pending.connection_id,
        "scopes": Jsonb(list(pending.scopes)),
        "redirect_uri": pending.redirect_uri,
        "return_to": pending.return_to,
        "code_verifier": verifier,
        "reauthorize": reauthorize,
        "name": name,
        "settings": Jsonb(settings),
        "expected_account": expected_account,
        "expected_domain": expected_domain,
        "replace_scopes": replace_scopes,
        "provider_app": provider_app,
        "created_at": pending.created_at,
        "expires_at": pending.expires_at,
        "browser_binding": pending.browser_binding,
    }
    await conn.execute(_INSERT_PENDING, params)


def _stored_pending(
    *,
    state_hash: str,
    tenant_id: str,
    owner: str,
    provider: str,
    connection_id: str,
    scopes: list[str] | None,
    redirect_uri: str,
    return_to: str,
    code_verifier: str | None,
    reauthorize: bool | None,
    name: str | None,
    settings: dict[str, str] | None,
    expected_account: str | None,
    expected_domain: str | None,
    replace_scopes: bool | None,
    provider_app: str | None,
    created_at: datetime,
    expires_at: datetime,
    used_at: datetime | None,
    browser_binding: str | None,
) -> StoredPending:
    pending = PendingAuthorization(
        state_hash=state_hash,
        tenant_id=tenant_id,
        owner=owner,
        provider=provider,
        connection_id=connection_id,
        scopes=tuple(scopes or ()),
        redirect_uri=redirect_uri,
        return_to=return_to,
        code_verifier=SecretStr(code_verifier) if code_verifier else None,
        created_at=created_at,
        expires_at=expires_at,
        used_at=used_at,
        browser_binding=browser_binding,
    )
    return StoredPending(
        pending,
        bool(reauthorize),
        name,
        dict(settings or {}),
        expected_account,
        expected_domain,
        bool(replace_scopes),
        provider_app,
    )


_PENDING_BY_HASH = """
    SELECT state_hash, tenant_id, owner, provider, connection_id, scopes, redirect_uri, return_to,
           code_verifier, reauthorize, name, settings, expected_account, expected_domain, replace_scopes,
           provider_app, created_at, expires_at, used_at, browser_binding
      FROM gateway.pending_authorizations
     WHERE state_hash = %(state_hash)s
    """
_LOCKED_PENDING_BY_HASH = _PENDING_BY_HASH + " FOR UPDATE"


async def pending_by_hash(
    conn: DriverConnection, state_hash: str, *, lock: bool = False
) -> StoredPending | None:
    """The pending authorization stored under this state hash, or None (optionally row-locked)."""
    statement = _LOCKED_PENDING_BY_HASH if lock else _PENDING_BY_HASH
    async with conn.cursor(row_factory=kwargs_row(_stored_pending)) as cursor:
        await cursor.execute(statement, {"state_hash": state_hash})
        return await cursor.fetchone()


_CONSUME_PENDING = """
    UPDATE gateway.pending_authorizations SET used_at = %(now)s, code_verifier = NULL
     WHERE state_hash = %(state_hash)s AND used_at IS NULL AND expires_at > %(now)s
    RETURNING state_hash
    """


async def consume_pending(conn: DriverConnection, state_hash: str, *, now: datetime) -> bool:
    """Mark a state used, atomically: True only for the one caller that consumed it."""
    cursor = await conn.execute(_CONSUME_PENDING, {"state_hash": state_hash, "now": now})
    return await cursor.fetchone() is not None


# RETURNING, counted: in pipeline mode (runtime.driver_transaction) a result is there only once read.
_DELETE_EXPIRED_PENDING = """
    WITH forgotten AS (
        DELETE FROM gateway.pending_authorizations WHERE expires_at < %(before)s RETURNING 1
    )
    SELECT count(*) FROM forgotten
    """


async def delete_expired_pending(conn: DriverConnection, *, before: datetime) -> int:
    """Forget flows that expired before `before` (kept a while so a late callback says 'expired')."""
    row = await (await conn.execute(_DELETE_EXPIRED_PENDING, {"before": before})).fetchone()
    return int(row[0]) if row is not None else 0


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


_INSERT_CONNECT_SESSION = """
    INSERT INTO gateway.connect_sessions
           (token_hash, session_id, tenant_id, user_id, created_at, expires_at, providers, run_id,
            provider_apps)
    VALUES (%(token_hash)s, %(session_id)s, %(tenant_id)s, %(user_id)s, %(now)s, %(expires_at)s,
            %(providers)s, %(run_id)s, %(provider_apps)s)
    """


async def insert_connect_session(
    conn: DriverConnection, *, token_hash: str, record: ConnectSession, now: datetime
) -> None:
    """Store a connect session under its token hash."""
    # SQL NULL, not JSON null, where the session is not limited.
    providers = Jsonb(list(record.providers)) if record.providers is not None else None
    provider_apps = Jsonb(dict(record.provider_apps)) if record.provider_apps else None
    params = {
        "token_hash": token_hash,
        "session_id": record.session_id,
        "tenant_id": record.tenant_id,
        "user_id": record.user_id,
        "now": now,
        "expires_at": record.expires_at,
        "providers": providers,
        "run_id": record.run_id,
        "provider_apps": provider_apps,
    }
    await conn.execute(_INSERT_CONNECT_SESSION, params)


def _connect_session(
    session_id: str,
    tenant_id: str,
    user_id: str,
    expires_at: datetime,
    link_used_at: datetime | None,
    providers: list[str] | None,
    run_id: str | None,
    provider_apps: dict[str, str] | None,
) -> ConnectSession:
    return ConnectSession(
        session_id,
        tenant_id,
        user_id,
        expires_at,
        link_used_at is not None,
        tuple(providers) if providers is not None else None,
        run_id,
        tuple(sorted((provider_apps or {}).items())),
    )


_CONNECT_SESSION_BY_HASH = """
    SELECT session_id, tenant_id, user_id, expires_at, link_used_at, providers, run_id, provider_apps
      FROM gateway.connect_sessions
     WHERE token_hash = %(token_hash)s
    """
# The request's failure counters and the session, in one statement: the session is not read when a
# counter refuses the request. Always one row (the counters' columns, then the session's, NULL when
# absent).
_GUARDED_CONNECT_SESSION = (
    EXHAUSTED  # noqa: S608 - composed of this package's constants only
    + """,
    credential AS MATERIALIZED (
        SELECT session_id, tenant_id, user_id, expires_at, link_used_at, providers, run_id, provider_apps
          FROM gateway.connect_sessions
         WHERE token_hash = %(token_hash)s AND NOT EXISTS (SELECT FROM exhausted)
    )
    SELECT exhausted.position, exhausted.seconds_left, credential.*
      FROM (SELECT) AS request LEFT JOIN exhausted ON true LEFT JOIN credential ON true
    """
)


async def connect_session_by_hash(
    conn: DriverConnection, token_hash: str, *, unless_exhausted: Sequence[Guard] = ()
) -> ConnectSession | None:
    """The connect session stored under this token hash (expired or not), or None.

    With `unless_exhausted`, the guards' counters are read in the same statement and the session is
    not looked at when one of them is used up (`rate_limit_store.Exhausted`).
    """
    if not unless_exhausted:
        row = await (await conn.execute(_CONNECT_SESSION_BY_HASH, {"token_hash": token_hash})).fetchone()
        return _connect_session(*row) if row is not None else None
    params: dict[str, Any] = {"token_hash": token_hash, **guard_parameters(unless_exhausted)}
    guarded = await (await conn.execute(_GUARDED_CONNECT_SESSION, params)).fetchone()
    assert guarded is not None  # the statement always returns its one row
    position, seconds_left, *session = guarded
    raise_if_exhausted(position, seconds_left)
    return _connect_session(*session) if session[0] is not None else None


_USE_CONNECT_LINK = """
    UPDATE gateway.connect_sessions SET link_used_at = %(now)s
     WHERE session_id = %(session_id)s AND link_used_at IS NULL AND expires_at > %(now)s
    RETURNING expires_at
    """


async def use_connect_link(conn: DriverConnection, session_id: str, *, now: datetime) -> datetime | None:
    """Mark a connect link exchanged, atomically: the session's expiry for the one caller that used it."""
    row = await (await conn.execute(_USE_CONNECT_LINK, {"session_id": session_id, "now": now})).fetchone()
    return row[0] if row is not None else None


_DELETE_EXPIRED_CONNECT_SESSIONS = """
    WITH forgotten AS (
        DELETE FROM gateway.connect_sessions WHERE expires_at < %(before)s RETURNING 1
    )
    SELECT count(*) FROM forgotten
    """


async def delete_expired_connect_sessions(conn: DriverConnection, *, before: datetime) -> int:
    """Forget connect sessions that expired before `before`."""
    row = await (await conn.execute(_DELETE_EXPIRED_CONNECT_SESSIONS, {"before": before})).fetchone()
    return int(row[0]) if row is not None else 0
