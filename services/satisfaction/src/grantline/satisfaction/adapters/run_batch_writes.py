"""The statements of a ``runs.requested`` batch: few round trips whatever the batch size.

Each statement's text never changes, so it is compiled and prepared once; rows travel as one JSON
parameter (encoding it is one C call, where array parameters would be escaped element by element).
A batch is: inbox and locks (``inbox_and_locks``), then the mirror read (a statement of its own, so
that its snapshot is taken after the locks are held), then runs and their events, then commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from grantline.contract.envelope import Event
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import outbox_row

# Runs that are new (not already known under their id) get their event written in the same statement;
# ``ord`` keeps the outbox in the order the batch decided them.
_RUNS_AND_EVENTS = (
    "WITH new_runs AS ("
    " INSERT INTO satisfaction.runs"
    " (tenant_id, run_id, user_id, app_id, trigger, is_test, status, requirements)"
    " SELECT tenant_id, run_id, user_id, app_id, trigger, is_test, status, requirements"
    " FROM json_to_recordset(CAST(%(runs)s AS json)) AS new(tenant_id text, run_id text, user_id text,"
    " app_id text, trigger text, is_test boolean, status text, requirements jsonb)"
    " ON CONFLICT ON CONSTRAINT runs_pkey DO NOTHING"
    " RETURNING tenant_id, run_id),"
    " written AS ("
    " INSERT INTO satisfaction.outbox (event_id, subject, payload, headers)"
    " SELECT CAST(e.event_id AS uuid), e.subject, convert_to(e.payload, 'UTF8'), e.headers"
    " FROM json_to_recordset(CAST(%(events)s AS json)) AS e(ord integer, tenant_id text, run_id text,"
    " event_id text, subject text, payload text, headers jsonb)"
    " JOIN new_runs ON new_runs.tenant_id = e.tenant_id AND new_runs.run_id = e.run_id"
    " ORDER BY e.ord"
    " RETURNING 1)"
    " SELECT tenant_id, run_id FROM new_runs"
)


async def insert_runs_with_events(
    conn: DriverConnection, runs: list[dict[str, Any]], events: Sequence[Event]
) -> set[tuple[str, str]]:
    """Track the runs and write each newly tracked run's event (``events[i]`` answers ``runs[i]``).

    Returns the ``(tenant_id, run_id)`` newly tracked; a run id already known gets no event.
    """
    if not runs:
        return set()
    event_rows = []
    for ord_, (run, event) in enumerate(zip(runs, events, strict=True)):
        row = outbox_row(event)
        event_rows.append(
            {
                "ord": ord_,
                "tenant_id": run["tenant_id"],
                "run_id": run["run_id"],
                "event_id": str(row["event_id"]),
                "subject": row["subject"],
                "payload": row["payload"].decode(),  # type: ignore[attr-defined]
                "headers": row["headers"],
            }
        )
    cursor = await conn.execute(
        _RUNS_AND_EVENTS, {"runs": json.dumps(runs), "events": json.dumps(event_rows)}, prepare=True
    )
    return {(tenant_id, run_id) for tenant_id, run_id in await cursor.fetchall()}
