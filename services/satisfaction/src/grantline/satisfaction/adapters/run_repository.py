"""Reading and writing ``runs`` and ``run_connections``.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
service never loads SQLAlchemy (adapters/tables.py declares the tables for the migrations only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row

from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class HeldRun:
    """A held run that a later grant may admit."""

    run_id: str
    user_id: str
    trigger: str
    requirements: list[dict[str, Any]]
    app_id: str
    is_test: bool


_HELD_RUNS = (
    "SELECT run_id, user_id, trigger, requirements, app_id, is_test FROM satisfaction.runs"
    " WHERE tenant_id = %(tenant_id)s AND status = 'held' AND trigger != 'schedule'"
)
_ORDER_HELD = " ORDER BY created_at, run_id"


async def held_runs(conn: DriverConnection, tenant_id: str, user_id: str | None) -> list[HeldRun]:
    """Held runs that a grant may resume: the user's, or every user's of the tenant when None."""
    statement = _HELD_RUNS + (" AND user_id = %(user_id)s" if user_id is not None else "") + _ORDER_HELD
    async with conn.cursor(row_factory=class_row(HeldRun)) as cursor:
        await cursor.execute(statement, {"tenant_id": tenant_id, "user_id": user_id})
        return await cursor.fetchall()


# The status condition makes this the single point of decision: of two replicas racing on the same
# run, the second waits on the row lock, re-reads the status and updates nothing.
_ADMIT_HELD = (
    "UPDATE satisfaction.runs SET status = 'admitted', updated_at = now()"
    " WHERE tenant_id = %(tenant_id)s AND run_id = %(run_id)s AND status = 'held'"
    " RETURNING run_id"
)


async def admit_held_run(conn: DriverConnection, tenant_id: str, run_id: str) -> bool:
    """Move a run from held to admitted; False when it is no longer held (someone else admitted it)."""
    cursor = await conn.execute(_ADMIT_HELD, {"tenant_id": tenant_id, "run_id": run_id})
    return await cursor.fetchone() is not None


_FINISH = (
    "INSERT INTO satisfaction.runs (tenant_id, run_id, trigger, status)"
    " VALUES (%(tenant_id)s, %(run_id)s, 'api', 'finished')"
    " ON CONFLICT ON CONSTRAINT runs_pkey DO UPDATE SET status = 'finished', updated_at = now()"
)
_FORGET_CONNECTIONS = (
    "DELETE FROM satisfaction.run_connections WHERE tenant_id = %(tenant_id)s AND run_id = %(run_id)s"
)


async def finish_run(conn: DriverConnection, tenant_id: str, run_id: str) -> None:
    """End tracking: the run becomes ``finished`` (a tombstone if unseen) and forgets its connections."""
    key = {"tenant_id": tenant_id, "run_id": run_id}
    await conn.execute(_FINISH, key)
    await conn.execute(_FORGET_CONNECTIONS, key)


_STATUS = "SELECT status FROM satisfaction.runs WHERE tenant_id = %(tenant_id)s AND run_id = %(run_id)s"


async def run_is_finished(conn: DriverConnection, tenant_id: str, run_id: str) -> bool:
    """Whether the run has finished (a resolve reported after that is not tracked)."""
    return await run_status(conn, tenant_id, run_id) == "finished"


_RECORD_RESOLUTION = (
    "INSERT INTO satisfaction.run_connections (tenant_id, run_id, connection_id, provider, resolved_at)"
    " VALUES (%(tenant_id)s, %(run_id)s, %(connection_id)s, %(provider)s, %(at)s)"
    " ON CONFLICT ON CONSTRAINT run_connections_pkey DO NOTHING"
    " RETURNING run_id"
)


async def record_resolution(
    conn: DriverConnection,
    tenant_id: str,
    run_id: str,
    connection_id: str,
    provider: str | None,
    at: datetime,
) -> bool:
    """Remember that the run resolved the connection; False when it was already remembered."""
    parameters = {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "connection_id": connection_id,
        "provider": provider,
        "at": at,
    }
    cursor = await conn.execute(_RECORD_RESOLUTION, parameters)
    return await cursor.fetchone() is not None


# The revocation path runs one per event; one_run narrows it to the run that just resolved.
_MARK_REVOKED = (
    "UPDATE satisfaction.run_connections AS rc SET revoked_at = %(at)s"
    " WHERE rc.tenant_id = %(tenant)s AND rc.connection_id = %(connection)s AND rc.revoked_at IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM satisfaction.runs AS r"
    " WHERE r.tenant_id = rc.tenant_id AND r.run_id = rc.run_id AND r.status = 'finished')"
)
_RETURNING = " RETURNING rc.run_id, rc.provider"
_MARK_ALL_REVOKED = _MARK_REVOKED + _RETURNING
_MARK_RUN_REVOKED = _MARK_REVOKED + " AND rc.run_id = %(run)s" + _RETURNING


async def mark_revoked(
    conn: DriverConnection, tenant_id: str, connection_id: str, at: datetime, run_id: str | None = None
) -> list[tuple[str, str | None]]:
    """Mark the in-flight runs that resolved the connection as told; returns ``(run_id, provider)`` of each.

    Runs already told are skipped (each run hears about a connection once); finished runs are skipped.
    """
    parameters = {"tenant": tenant_id, "connection": connection_id, "at": at, "run": run_id}
    statement = _MARK_ALL_REVOKED if run_id is None else _MARK_RUN_REVOKED
    cursor = await conn.execute(statement, parameters)
    return sorted((told_run, provider) for told_run, provider in await cursor.fetchall())


async def run_status(conn: DriverConnection, tenant_id: str, run_id: str) -> str | None:
    """A run's status (``held``, ``admitted``, ``finished``, ``invalid``), or None when unknown."""
    cursor = await conn.execute(_STATUS, {"tenant_id": tenant_id, "run_id": run_id})
    row = await cursor.fetchone()
    return str(row[0]) if row is not None else None
