"""The runner registry in Postgres (``runner_auth.runners``), on psycopg directly.

runner-auth never loads SQLAlchemy (about 20 MB at rest); adapters/tables.py declares the table for
the migrations only. Every function takes the psycopg connection of the caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import namedtuple_row

from grantline.runner_auth.domain.runner import Runner
from grantline.runtime.db.driver import DriverConnection

_COLUMNS = "runner_id, name, tenants, platform_wide, secret_hash, created_at, revoked_at"


def _runner(row: Any) -> Runner:
    return Runner(
        runner_id=row.runner_id,
        name=row.name,
        tenants=None if row.platform_wide else tuple(row.tenants),
        secret_hash=bytes(row.secret_hash),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def _one(conn: DriverConnection, statement: str, params: dict[str, Any]) -> Runner | None:
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(statement, params)
        row = await cursor.fetchone()
    return None if row is None else _runner(row)


_ADD = f"""
    INSERT INTO runner_auth.runners (runner_id, name, tenants, platform_wide, secret_hash, created_by)
    VALUES (%(runner_id)s, %(name)s, %(tenants)s, %(platform_wide)s, %(secret_hash)s, %(created_by)s)
    RETURNING {_COLUMNS}
    """  # noqa: S608 - composed of this module's constants only


async def add_runner(
    conn: DriverConnection,
    *,
    runner_id: str,
    name: str,
    tenants: Sequence[str] | None,
    secret_hash: bytes,
    created_by: str,
) -> Runner:
    """Insert a runner and return it as stored."""
    params = {
        "runner_id": runner_id,
        "name": name,
        "tenants": None if tenants is None else list(tenants),
        "platform_wide": tenants is None,
        "secret_hash": secret_hash,
        "created_by": created_by,
    }
    runner = await _one(conn, _ADD, params)
    assert runner is not None  # INSERT ... RETURNING returns the row it inserted
    return runner


_GET = f"SELECT {_COLUMNS} FROM runner_auth.runners WHERE runner_id = %(runner_id)s"  # noqa: S608


async def get_runner(conn: DriverConnection, runner_id: str) -> Runner | None:
    """The runner with this id, revoked or not."""
    return await _one(conn, _GET, {"runner_id": runner_id})


# `tenants = ARRAY[tenant]`: created for that tenant alone (a runner serving several is an operator's).
_LIST = f"""
    SELECT {_COLUMNS} FROM runner_auth.runners
     WHERE (CAST(%(only_tenant)s AS text) IS NULL OR tenants = ARRAY[CAST(%(only_tenant)s AS varchar)])
       AND (%(include_revoked)s OR revoked_at IS NULL)
     ORDER BY created_at, runner_id
    """  # noqa: S608 - composed of this module's constants only


async def list_runners(
    conn: DriverConnection, *, only_tenant: str | None = None, include_revoked: bool = False
) -> list[Runner]:
    """Runners, oldest first: all, or those created for ``only_tenant`` alone."""
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(_LIST, {"only_tenant": only_tenant, "include_revoked": include_revoked})
        return [_runner(row) for row in await cursor.fetchall()]


_MARK_REVOKED = f"""
    UPDATE runner_auth.runners
       SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, %(revoked_by)s)
     WHERE runner_id = %(runner_id)s
    RETURNING {_COLUMNS}
    """  # noqa: S608 - composed of this module's constants only


async def mark_revoked(conn: DriverConnection, runner_id: str, *, revoked_by: str) -> Runner | None:
    """Revoke a runner (idempotent: a revoked one keeps its first revocation time)."""
    return await _one(conn, _MARK_REVOKED, {"runner_id": runner_id, "revoked_by": revoked_by})


_TO_ENFORCE = """
    SELECT runner_id FROM runner_auth.runners
     WHERE revoked_at IS NOT NULL
       AND (kick_checked_at IS NULL OR kick_checked_at < revoked_at + %(grace)s)
     ORDER BY revoked_at
     LIMIT %(limit)s
    """


async def revocations_to_enforce(conn: DriverConnection, *, grace: timedelta, limit: int = 100) -> list[str]:
    """Revoked runners whose connections the sweep must still look for.

    A runner stays on this list until a sweep has run at least ``grace`` after its revocation: a
    connection authorised just before the revocation committed may register with the server a moment
    after the first kick.
    """
    cursor = await conn.execute(_TO_ENFORCE, {"grace": grace, "limit": limit})
    return [runner_id for (runner_id,) in await cursor.fetchall()]


async def mark_kick_checked(conn: DriverConnection, runner_ids: Sequence[str], at: datetime) -> None:
    """Record that the sweep closed these runners' connections at ``at``."""
    if runner_ids:
        await conn.execute(
            "UPDATE runner_auth.runners SET kick_checked_at = %(at)s"
            " WHERE runner_id = ANY(CAST(%(ids)s AS text[]))",
            {"at": at, "ids": list(runner_ids)},
        )


async def transaction_time(conn: DriverConnection) -> datetime:
    """When the caller's transaction began (Postgres's ``now()``)."""
    cursor = await conn.execute("SELECT now()")
    row = await cursor.fetchone()
    assert row is not None
    started: datetime = row[0]
    return started
