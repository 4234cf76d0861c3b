"""Reading and writing ``connection_mirror`` rows as ``MirrorRecord``s."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.adapters.tables import connection_mirror as mirror
from grantline.satisfaction.domain.mirror_records import MirrorRecord
from grantline.satisfaction.domain.mirror_rules import MirrorRow
from grantline.satisfaction.domain.report import ConnectedGrant

_UPDATABLE = [
    c.name for c in mirror.columns if c.name not in ("tenant_id", "owner", "provider", "connection_id")
]


def record_from_row(row: Row[Any]) -> MirrorRecord:
    """A table row as a record."""
    return MirrorRecord(
        tenant_id=row.tenant_id,
        row=MirrorRow(
            owner=row.owner,
            provider=row.provider,
            connection_id=row.connection_id,
            connected=row.connected,
            scopes=frozenset(row.scopes or ()),
            connected_at=row.connected_at,
            last_grant_event_id=row.last_grant_event_id,
            last_event_at=row.last_event_at,
            last_event_id=row.last_event_id,
            missing_scopes=frozenset(row.missing_scopes or ()),
            missing_marked_at=row.missing_marked_at,
            missing_event_id=row.missing_event_id,
        ),
        last_event_kind=row.last_event_kind,
        account=row.account,
        shared_fallback=row.shared_fallback,
        workspace_forced=row.workspace_forced,
        sharing_at=row.sharing_at,
        sharing_event_id=row.sharing_event_id,
        last_reason=row.last_reason,
    )


def record_values(record: MirrorRecord) -> dict[str, Any]:
    """A record as column values."""
    row = record.row
    return {
        "tenant_id": record.tenant_id,
        "owner": row.owner,
        "provider": row.provider,
        "connection_id": row.connection_id,
        "connected": row.connected,
        "scopes": sorted(row.scopes),
        "connected_at": row.connected_at,
        "last_grant_event_id": row.last_grant_event_id,
        "last_event_at": row.last_event_at,
        "last_event_id": row.last_event_id,
        "missing_scopes": sorted(row.missing_scopes),
        "missing_marked_at": row.missing_marked_at,
        "missing_event_id": row.missing_event_id,
        "last_event_kind": record.last_event_kind,
        "account": record.account,
        "shared_fallback": record.shared_fallback,
        "workspace_forced": record.workspace_forced,
        "sharing_at": record.sharing_at,
        "sharing_event_id": record.sharing_event_id,
        "last_reason": record.last_reason,
    }


# Built once: constructing a Core statement costs more than running it (its compiled form is cached).
_GET_RECORD = (
    select(mirror)
    .where(
        mirror.c.tenant_id == bindparam("tenant_id"),
        mirror.c.owner == bindparam("owner"),
        mirror.c.provider == bindparam("provider"),
        mirror.c.connection_id == bindparam("connection_id"),
    )
    .with_for_update()
)
_UPSERT = insert(mirror)
_SAVE_RECORD = _UPSERT.on_conflict_do_update(
    constraint="connection_mirror_pkey", set_={name: _UPSERT.excluded[name] for name in _UPDATABLE}
)


async def get_record(
    session: AsyncSession, tenant_id: str, owner: str, provider: str, connection_id: str
) -> MirrorRecord | None:
    """One connection's record, locked for update; None when the mirror has not seen it."""
    key = {"tenant_id": tenant_id, "owner": owner, "provider": provider, "connection_id": connection_id}
    row = (await session.execute(_GET_RECORD, key)).first()
    return record_from_row(row) if row is not None else None


async def save_record(session: AsyncSession, record: MirrorRecord) -> None:
    """Insert or overwrite one record."""
    await session.execute(_SAVE_RECORD, record_values(record))


async def records_for_user(session: AsyncSession, tenant_id: str, user_id: str) -> list[MirrorRecord]:
    """The user's own records and the tenant's workspace records: what a report for the user reads."""
    rows = (
        await session.execute(
            select(mirror).where(
                mirror.c.tenant_id == tenant_id, mirror.c.owner.in_((f"user:{user_id}", "workspace"))
            )
        )
    ).all()
    return [record_from_row(row) for row in rows]


async def records_for_webhook(
    session: AsyncSession, tenant_id: str, provider: str, connection_ids: Sequence[str], account: str | None
) -> list[MirrorRecord]:
    """The records a webhook names: by connection id when the gateway matched them, else by account."""
    matches: list[ColumnElement[bool]] = []
    if connection_ids:
        matches.append(mirror.c.connection_id.in_(list(connection_ids)))
    if account:
        matches.append(and_(mirror.c.provider == provider, mirror.c.account == account))
    if not matches:
        return []
    rows = (
        await session.execute(
            select(mirror).where(mirror.c.tenant_id == tenant_id, or_(*matches)).with_for_update()
        )
    ).all()
    return [record_from_row(row) for row in rows]


async def all_records(session: AsyncSession) -> list[MirrorRecord]:
    """Every record, in key order (used to compare mirrors)."""
    rows = (
        await session.execute(
            select(mirror).order_by(
                mirror.c.tenant_id, mirror.c.owner, mirror.c.provider, mirror.c.connection_id
            )
        )
    ).all()
    return [record_from_row(row) for row in rows]


def values_of(records: Iterable[MirrorRecord]) -> list[dict[str, Any]]:
    """Column values of many records (for bulk inserts)."""
    return [record_values(record) for record in records]


async def records_for_users(
    session: AsyncSession, users: set[tuple[str, str]]
) -> dict[tuple[str, str], list[MirrorRecord]]:
    """``records_for_user`` for many ``(tenant_id, user_id)`` in one query."""
    owners = {(tenant_id, f"user:{user_id}") for tenant_id, user_id in users}
    owners |= {(tenant_id, "workspace") for tenant_id, _ in users}
    rows = (
        await session.execute(
            select(mirror).where(tuple_(mirror.c.tenant_id, mirror.c.owner).in_(sorted(owners)))
        )
    ).all()
    by_owner: dict[tuple[str, str], list[MirrorRecord]] = {}
    for row in rows:
        by_owner.setdefault((row.tenant_id, row.owner), []).append(record_from_row(row))
    return {
        (tenant_id, user_id): by_owner.get((tenant_id, f"user:{user_id}"), [])
        + by_owner.get((tenant_id, "workspace"), [])
        for tenant_id, user_id in users
    }


# The hot paths' read: only connected rows (and workspace rows that force the shared connection,
# connected or not), only the columns a report needs, one statement for any number of users. The
# (tenant_id, owner) pairs drive a nested loop over the primary key's prefix.
# psycopg placeholders: run on the driver connection (admission) or with exec_driver_sql (checks).
_CONNECTED_FOR_OWNERS = (
    "SELECT m.tenant_id, m.owner, m.provider, m.scopes, m.missing_scopes, m.shared_fallback,"
    " m.workspace_forced, m.connected"
    " FROM json_to_recordset(CAST(%(owners)s AS json)) AS wanted(tenant_id text, owner text)"
    " JOIN satisfaction.connection_mirror AS m"
    " ON m.tenant_id = wanted.tenant_id AND m.owner = wanted.owner"
    " WHERE m.connected OR m.workspace_forced"
)


def connected_query(users: Iterable[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The statement and parameters that read the connected grants of ``(tenant_id, user_id)`` pairs."""
    owners = {(tenant_id, f"user:{user_id}") for tenant_id, user_id in users}
    owners |= {(tenant_id, "workspace") for tenant_id, _ in owners}
    wanted = [{"tenant_id": tenant_id, "owner": owner} for tenant_id, owner in sorted(owners)]
    return _CONNECTED_FOR_OWNERS, {"owners": json.dumps(wanted)}


def grants_by_user(
    users: Iterable[tuple[str, str]], rows: Iterable[Any]
) -> dict[tuple[str, str], list[ConnectedGrant]]:
    """Rows of ``connected_query`` as each user's own grants followed by the tenant's workspace ones."""
    by_owner: dict[tuple[str, str], list[ConnectedGrant]] = {}
    for tenant_id, owner, provider, scopes, missing, shared_fallback, forced, connected in rows:
        workspace = owner == "workspace"
        held = frozenset(scopes or ()).difference(missing or ())
        by_owner.setdefault((tenant_id, owner), []).append(
            ConnectedGrant(provider, held, workspace, shared_fallback, forced, connected)
        )
    return {
        (tenant_id, user_id): by_owner.get((tenant_id, f"user:{user_id}"), [])
        + by_owner.get((tenant_id, "workspace"), [])
        for tenant_id, user_id in users
    }


async def send_connected_grants_read(
    conn: DriverConnection, users: set[tuple[str, str]]
) -> Callable[[], Awaitable[dict[tuple[str, str], list[ConnectedGrant]]]]:
    """The connected grants each ``(tenant_id, user_id)`` may use, in one query, in two steps: send the
    read now, take its rows with the returned call (on a pipelined connection, sending does not wait).
    """
    statement, parameters = connected_query(users)
    cursor = await conn.execute(statement, parameters, prepare=True)

    async def grants() -> dict[tuple[str, str], list[ConnectedGrant]]:
        return grants_by_user(users, await cursor.fetchall())

    return grants
