"""The statements of a refresh, on psycopg directly: two round trips around the provider call.

A refresh is the vault's busiest write (hundreds a second when a fleet of tokens comes due), and
through SQLAlchemy sessions its three transactions cost more CPU than the provider call. Here each
step is one statement, run in autocommit (``ServiceRuntime.single_statement``): one round trip, no
BEGIN or COMMIT.

1. ``take_lease``: the lease update and the read of what the provider call needs (the connection,
   its provider app with the sealed client secret, the tenant's own definition of the provider when
   it has one). The tenant's data keys are read (and the seals about to be made counted) by the
   data key store, in between.
2. ``store_refreshed``: the fenced write of the new sealed tokens and the two outbox rows, so the
   events exist exactly when the tokens landed.

The other fenced writes (release, reauth, failure) are rarer but use the same lease rules: a write
lands only while this replica holds the lease at the version it took it with (the fencing token).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.rows import namedtuple_row

from grantline.contract.envelope import Event
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import event_parameters

# Columns of the leased row: everything a refresh reads, nothing it does not.
_LEASED_COLUMNS = (
    "id, tenant_id, owner, provider, provider_app_id, status, scopes, account, expires_at,"
    " refresh_token_expires_at, version, provider_definition, settings, access_token, refresh_token,"
    " id_token, refresh_started_at"
)

# The outer query reads the statement's snapshot, from before the lease update (a data-modifying CTE's
# effects show only through its RETURNING): it says whether the connection exists at all, and brings
# its provider app (which must be the connection's tenant's).
_TAKE_LEASE = f"""
WITH leased AS (
    UPDATE vault.connections
       SET lease_owner = %(owner)s,
           lease_expires_at = now() + make_interval(secs => CAST(%(seconds)s AS double precision)),
           version = version + 1
     WHERE tenant_id = %(tenant_id)s AND id = %(connection_id)s
       AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = %(owner)s)
    RETURNING {_LEASED_COLUMNS}
)
SELECT leased.*,
       a.id AS app_id, a.client_id, a.client_secret, a.settings AS app_settings, a.enabled AS app_enabled,
       a.tenant_id AS app_owner, t.definition AS tenant_definition
  FROM vault.connections c
  LEFT JOIN leased ON true
  -- The tenant's own app, or an operator's platform app (owner `_platform`), which tenants may use.
  LEFT JOIN vault.provider_apps a
    ON a.id = c.provider_app_id AND a.tenant_id IN (c.tenant_id, '_platform')
  LEFT JOIN vault.tenant_providers t ON t.tenant_id = c.tenant_id AND t.provider = c.provider
 WHERE c.tenant_id = %(tenant_id)s AND c.id = %(connection_id)s
"""  # noqa: S608 - composed of this module's constants only

# The events of a step, in order (``event_parameters``).
_WRITE_EVENTS = """INSERT INTO vault.outbox (event_id, subject, payload, headers)
SELECT e.event_id, e.subject, e.payload, CAST(e.headers AS jsonb)
  FROM unnest(%(event_ids)s::uuid[], %(subjects)s::text[], %(payloads)b::bytea[], %(headers)s::text[])
       WITH ORDINALITY AS e(event_id, subject, payload, headers, n)"""
_FENCE = "WHERE id = %(connection_id)s AND lease_owner = %(owner)s AND version = %(fence)s"
# Releasing keeps `refresh_started_at` only after a provider call whose outcome is unknown.
_RELEASE_LEASE_KEEPING_ATTEMPT = (
    "lease_owner = NULL, lease_expires_at = NULL, version = version + 1, updated_at = now()"
)
_RELEASE_LEASE = _RELEASE_LEASE_KEEPING_ATTEMPT + ", refresh_started_at = NULL"


def _fenced_write_with_events(assignments: str) -> str:
    # Data-modifying CTEs run to completion whether or not they are read; the outbox rows are only
    # written when the fenced update found its row, so zero rows back means the fence was lost.
    return f"""
WITH stored AS (
    UPDATE vault.connections SET {assignments}, {_RELEASE_LEASE} {_FENCE} RETURNING id
)
{_WRITE_EVENTS}
 WHERE EXISTS (SELECT 1 FROM stored)
 ORDER BY e.n
RETURNING 1
"""  # noqa: S608 - composed of this module's constants only


_STORE_REFRESHED = _fenced_write_with_events(
    "access_token = %(access_token)s, refresh_token = %(refresh_token)s, id_token = %(id_token)s,"
    " expires_at = %(expires_at)s, refresh_token_expires_at = %(refresh_token_expires_at)s,"
    " scopes = %(scopes)s, last_refreshed_at = now()"
)
_MARK_REAUTH = _fenced_write_with_events(
    "status = 'reauth_required', status_reason = %(reason)s,"
    " access_token = NULL, refresh_token = NULL, id_token = NULL, api_key = NULL"
)

_RELEASE = f"UPDATE vault.connections SET {_RELEASE_LEASE} {_FENCE}"  # noqa: S608

_RELEASE_KEEPING_ATTEMPT = f"UPDATE vault.connections SET {_RELEASE_LEASE_KEEPING_ATTEMPT} {_FENCE}"  # noqa: S608


def _release_recording(release: str) -> str:
    # A failed attempt is recorded whether or not the fence still holds (it happened either way).
    return f"""
WITH released AS (UPDATE vault.connections SET {release} {_FENCE})
{_WRITE_EVENTS}
 ORDER BY e.n
"""  # noqa: S608 - composed of this module's constants only


_RELEASE_RECORDING = _release_recording(_RELEASE_LEASE)
_RELEASE_RECORDING_KEEPING_ATTEMPT = _release_recording(_RELEASE_LEASE_KEEPING_ATTEMPT)

# The provider call is about to spend the refresh token: note when (the first such call since the last
# settled outcome: a provider's grace period counts from the token's first use), and stretch the
# lease over the whole call, so no other replica takes the connection while the call may be in flight.
_BEGIN_ATTEMPT = f"""
UPDATE vault.connections
   SET refresh_started_at = COALESCE(refresh_started_at, now()),
       lease_expires_at = GREATEST(
           lease_expires_at, now() + make_interval(secs => CAST(%(seconds)s AS double precision)))
 {_FENCE}
RETURNING refresh_started_at
"""  # noqa: S608 - composed of this module's constants only

_CURRENT = "SELECT status, expires_at FROM vault.connections WHERE tenant_id = %(tenant_id)s AND id = %(id)s"


async def take_lease(
    conn: DriverConnection, *, tenant_id: str, connection_id: str, owner: str, seconds: int
) -> Any | None:
    """Take the refresh lease when it is free, expired, or this replica's own.

    A replica refreshes a connection once at a time (single flight in the process), so a lease it
    already holds is left from an attempt that ended without releasing it (its write failed, or its
    reply was lost): taking it again is safe, and a new version fences the old attempt out.

    Returns None when the tenant has no such connection. Otherwise a row with the provider app's
    columns (``app_id``, ``client_id``, ``client_secret``, ``app_settings``, ``app_enabled``,
    ``app_owner``: the tenant, or ``_platform`` for an operator's platform app; null without an app),
    plus the leased connection's columns, which are all null (``id`` too) when
    another holder's lease is live. The row's ``version`` is the fence for later writes.
    """
    params = {"tenant_id": tenant_id, "connection_id": connection_id, "owner": owner, "seconds": seconds}
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(_TAKE_LEASE, params, prepare=True)
        return await cursor.fetchone()


async def store_refreshed(
    conn: DriverConnection,
    *,
    connection_id: str,
    owner: str,
    fence: int,
    sealed: Mapping[str, bytes | None],
    expires_at: datetime | None,
    refresh_token_expires_at: datetime | None,
    scopes: Sequence[str],
    events: Sequence[Event],
) -> bool:
    """Write the new sealed tokens and their events as the lease holder, releasing the lease.

    False (and nothing written) when the fence no longer holds: the connection was revoked, or the
    lease lapsed and another replica took it, while the provider answered.
    """
    cursor = await conn.execute(
        _STORE_REFRESHED,
        {
            "connection_id": connection_id,
            "owner": owner,
            "fence": fence,
            "access_token": sealed["access_token"],
            "refresh_token": sealed["refresh_token"],
            "id_token": sealed["id_token"],
            "expires_at": expires_at,
            "refresh_token_expires_at": refresh_token_expires_at,
            "scopes": list(scopes),
            **event_parameters(events),
        },
        prepare=True,
    )
    return bool(await cursor.fetchall())


async def mark_reauth_required(
    conn: DriverConnection,
    connection_id: str,
    owner: str,
    fence: int,
    *,
    reason: str,
    events: Sequence[Event],
) -> bool:
    """Give up on the connection (its secrets are deleted) and write the events, as the lease holder."""
    cursor = await conn.execute(
        _MARK_REAUTH,
        {
            "connection_id": connection_id,
            "owner": owner,
            "fence": fence,
            "reason": reason,
            **event_parameters(events),
        },
        prepare=True,
    )
    return bool(await cursor.fetchall())


async def begin_attempt(
    conn: DriverConnection, connection_id: str, owner: str, fence: int, *, seconds: float
) -> bool:
    """Mark the provider call as begun and hold the lease `seconds` from now; False: fence lost."""
    params = {"connection_id": connection_id, "owner": owner, "fence": fence, "seconds": seconds}
    cursor = await conn.execute(_BEGIN_ATTEMPT, params, prepare=True)
    return bool(await cursor.fetchall())


async def release(
    conn: DriverConnection,
    connection_id: str,
    owner: str,
    fence: int,
    *,
    events: Sequence[Event] = (),
    keep_attempt: bool = False,
) -> None:
    """Release the lease unchanged (when the fence still holds), writing ``events`` in any case.

    `keep_attempt` leaves `refresh_started_at` set: the provider call's outcome is unknown, and the
    next holder must decide whether the refresh token may be presented again.
    """
    params = {"connection_id": connection_id, "owner": owner, "fence": fence}
    if events:
        statement = _RELEASE_RECORDING_KEEPING_ATTEMPT if keep_attempt else _RELEASE_RECORDING
        await conn.execute(statement, {**params, **event_parameters(events)}, prepare=True)
    else:
        await conn.execute(_RELEASE_KEEPING_ATTEMPT if keep_attempt else _RELEASE, params, prepare=True)


async def current_state(conn: DriverConnection, tenant_id: str, connection_id: str) -> Any | None:
    """The connection's status and expiry now (None when it no longer exists)."""
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(_CURRENT, {"tenant_id": tenant_id, "id": connection_id}, prepare=True)
        return await cursor.fetchone()
