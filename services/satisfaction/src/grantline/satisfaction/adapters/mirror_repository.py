"""Reading and writing ``connection_mirror`` rows as ``MirrorRecord``s.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
service never loads SQLAlchemy (adapters/tables.py declares the table for the migrations only).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from psycopg.rows import namedtuple_row

from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.domain.mirror_records import MirrorRecord
from grantline.satisfaction.domain.mirror_rules import MirrorRow
from grantline.satisfaction.domain.report import ConnectedGrant

KEY = ("tenant_id", "owner", "provider", "connection_id")
# Every column of connection_mirror, in the table's order (adapters/tables.py).
COLUMNS = (
    *KEY,
    "connected",
    "scopes",
    "connected_at",
    "last_grant_event_id",
    "last_event_at",
    "last_event_id",
    "last_event_kind",
    "account",
    "shared_fallback",
    "last_reason",
    "missing_scopes",
    "missing_marked_at",
    "missing_event_id",
    "workspace_forced",
    "sharing_at",
    "sharing_event_id",
)
_ARRAYS = ("scopes", "missing_scopes")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM satisfaction.connection_mirror"  # noqa: S608 - constants


def upsert_statement(table: str) -> str:
    """Insert one record into ``table`` (the live mirror or the rebuild's copy), or overwrite it."""
    values = ", ".join(
        f"CAST(%({name})s AS text[])" if name in _ARRAYS else f"%({name})s" for name in COLUMNS
    )
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in COLUMNS if name not in KEY)
    return (
        f"INSERT INTO satisfaction.{table} ({', '.join(COLUMNS)}) VALUES ({values})"  # noqa: S608 - constants
        f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {updates}"
    )


def record_from_row(row: Any) -> MirrorRecord:
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


_GET_RECORD = (
    f"{_SELECT} WHERE tenant_id = %(tenant_id)s AND owner = %(owner)s AND provider = %(provider)s"
    " AND connection_id = %(connection_id)s FOR UPDATE"
)
_SAVE_RECORD = upsert_statement("connection_mirror")
_FOR_USER = f"{_SELECT} WHERE tenant_id = %(tenant_id)s AND owner IN (%(user_owner)s, 'workspace')"
_ALL = f"{_SELECT} ORDER BY {', '.join(KEY)}"


async def _records(conn: DriverConnection, statement: str, parameters: dict[str, Any]) -> list[MirrorRecord]:
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(statement, parameters)
        return [record_from_row(row) for row in await cursor.fetchall()]


async def get_record(
    conn: DriverConnection, tenant_id: str, owner: str, provider: str, connection_id: str
) -> MirrorRecord | None:
    """One connection's record, locked for update; None when the mirror has not seen it."""
    key = {"tenant_id": tenant_id, "owner": owner, "provider": provider, "connection_id": connection_id}
    records = await _records(conn, _GET_RECORD, key)
    return records[0] if records else None


async def save_record(conn: DriverConnection, record: MirrorRecord) -> None:
    """Insert or overwrite one record."""
    await conn.execute(_SAVE_RECORD, record_values(record))


async def records_for_user(conn: DriverConnection, tenant_id: str, user_id: str) -> list[MirrorRecord]:
    """The user's own records and the tenant's workspace records: what a report for the user reads."""
    return await _records(conn, _FOR_USER, {"tenant_id": tenant_id, "user_owner": f"user:{user_id}"})


async def records_for_webhook(
    conn: DriverConnection, tenant_id: str, provider: str, connection_ids: Sequence[str], account: str | None
) -> list[MirrorRecord]:
    """The records a webhook names: by connection id when the gateway matched them, else by account."""
    matches: list[str] = []
    if connection_ids:
        matches.append("connection_id = ANY(CAST(%(connection_ids)s AS text[]))")
    if account:
        matches.append("(provider = %(provider)s AND account = %(account)s)")
    if not matches:
        return []
    statement = f"{_SELECT} WHERE tenant_id = %(tenant_id)s AND ({' OR '.join(matches)}) FOR UPDATE"
    parameters = {
        "tenant_id": tenant_id,
        "connection_ids": list(connection_ids),
        "provider": provider,
        "account": account,
    }
    return await _records(conn, statement, parameters)


async def all_records(conn: DriverConnection) -> list[MirrorRecord]:
    """Every record, in key order (used to compare mirrors)."""
    return await _records(conn, _ALL, {})


def values_of(records: Iterable[MirrorRecord]) -> list[dict[str, Any]]:
    """Column values of many records (for bulk inserts)."""
    return [record_values(record) for record in records]


# The hot paths' read: only connected rows (and workspace rows that force the shared connection,
# connected or not), only the columns a report needs, one statement for any number of users. The
# (tenant_id, owner) pairs drive a nested loop over the primary key's prefix.
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
