"""The vault's record of finished runs (their grants resolve nothing more), on psycopg."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from grantline.runtime.db.driver import DriverConnection

# All runs in one statement, each column travelling as one array parameter.
_ADD_FINISHED = """
    INSERT INTO vault.finished_runs (tenant_id, run_id)
    SELECT * FROM unnest(CAST(%(tenant_ids)s AS text[]), CAST(%(run_ids)s AS text[]))
    ON CONFLICT DO NOTHING
    """


async def add_finished(conn: DriverConnection, runs: Iterable[tuple[str, str]]) -> None:
    """Remember runs as finished; a run already known stays as it was (redeliveries change nothing)."""
    pairs = list(runs)
    if pairs:
        params = {
            "tenant_ids": [tenant_id for tenant_id, _ in pairs],
            "run_ids": [run_id for _, run_id in pairs],
        }
        await conn.execute(_ADD_FINISHED, params)


# Counted in the statement: a cursor's rowcount is not there yet in pipeline mode.
_FORGET_FINISHED_BEFORE = """
    WITH forgotten AS (DELETE FROM vault.finished_runs WHERE finished_at < %(cutoff)s RETURNING 1)
    SELECT count(*) FROM forgotten
    """


async def forget_finished_before(conn: DriverConnection, cutoff: datetime) -> int:
    """Drop runs finished before ``cutoff`` (no grant of theirs can still be current); returns how many."""
    cursor = await conn.execute(_FORGET_FINISHED_BEFORE, {"cutoff": cutoff})
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0
