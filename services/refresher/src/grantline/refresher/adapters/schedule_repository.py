"""Postgres access to the refresh schedule: entries, claims with leases, outcomes, warnings.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
refresher never loads SQLAlchemy (adapters/tables.py declares the table for the migrations only).
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from psycopg.rows import class_row

from grantline.refresher.domain.schedule import ScheduleEntry
from grantline.runtime.db.driver import DriverConnection

_ENTRY_FIELDS = tuple(f.name for f in fields(ScheduleEntry))


def _shallow(instance: object, names: Sequence[str]) -> dict[str, object]:
    # dataclasses.asdict deep-copies every value (each datetime's tzinfo included); the values here
    # are immutable, so a shallow read is the same dict for a fraction of the CPU.
    return {name: getattr(instance, name) for name in names}


@dataclass(frozen=True)
class ClaimedRefresh:
    """A due row this worker holds under a lease until it records an outcome or the lease ends."""

    connection_id: str
    tenant_id: str
    provider: str
    expires_at: datetime | None
    due_at: datetime | None
    attempts: int
    lease_token: uuid.UUID


# Reads only the head of the partial index `refresh_schedule_due`; SKIP LOCKED lets replicas claim
# side by side. The claimed row's next_attempt_at becomes its lease expiry: if this worker dies, the
# row is due again exactly when the lease ends.
_CLAIM_DUE = """
    WITH due AS (
        SELECT connection_id FROM refresher.refresh_schedule
         WHERE state = 'scheduled' AND next_attempt_at <= %(now)s
           AND provider <> ALL(CAST(%(busy)s AS text[]))
         ORDER BY next_attempt_at
         LIMIT %(limit)s
         FOR UPDATE SKIP LOCKED
    )
    UPDATE refresher.refresh_schedule AS s
       SET lease_owner = %(owner)s, lease_token = gen_random_uuid(), lease_until = %(until)s,
           next_attempt_at = %(until)s, attempts = s.attempts + 1
      FROM due
     WHERE s.connection_id = due.connection_id
 RETURNING s.connection_id, s.tenant_id, s.provider, s.expires_at, s.due_at, s.attempts, s.lease_token
    """


async def claim_due(
    conn: DriverConnection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    skip_providers: Sequence[str] = (),
) -> list[ClaimedRefresh]:
    """Claim up to ``limit`` due rows for ``owner`` until ``lease_until`` (none of ``skip_providers``)."""
    cursor = await conn.execute(
        _CLAIM_DUE,
        {"now": now, "until": lease_until, "owner": owner, "limit": limit, "busy": list(skip_providers)},
        prepare=True,
    )
    return [ClaimedRefresh(*row) for row in await cursor.fetchall()]


@dataclass(frozen=True)
class OutcomeWrite:
    """The new state of a claimed row after its attempt; applied only while the lease is still ours."""

    connection_id: str
    lease_token: uuid.UUID
    state: str
    end_reason: str | None
    expires_at: datetime | None
    due_at: datetime | None
    next_attempt_at: datetime | None
    # attempts = 0 when reset, else attempts + attempts_delta (-1 gives back a deferred claim).
    reset_attempts: bool
    attempts_delta: int
    last_error: str | None
    refreshed_at: datetime | None
    clear_warning: bool


# All outcomes of a batch in one statement (rows travel as one JSON parameter). The rows are locked
# in connection order first, as the schedule consumer locks them: no deadlock between the two.
_RECORD_OUTCOMES = """
    WITH o AS (
        SELECT * FROM json_to_recordset(CAST(%(outcomes)s AS json)) AS o(
            connection_id text, lease_token uuid, state text, end_reason text, expires_at timestamptz,
            due_at timestamptz, next_attempt_at timestamptz, reset_attempts boolean,
            attempts_delta integer, last_error text, refreshed_at timestamptz, clear_warning boolean)
    ), locked AS (
        SELECT s.connection_id FROM refresher.refresh_schedule AS s
         WHERE s.connection_id = ANY(CAST(%(ids)s AS text[]))
         ORDER BY s.connection_id
         FOR UPDATE
    )
    UPDATE refresher.refresh_schedule AS s
       SET state = o.state, end_reason = o.end_reason, expires_at = o.expires_at,
           due_at = o.due_at, next_attempt_at = o.next_attempt_at,
           attempts = CASE WHEN o.reset_attempts THEN 0
                           ELSE greatest(0, s.attempts + o.attempts_delta) END,
           last_error = o.last_error,
           last_refreshed_at = coalesce(o.refreshed_at, s.last_refreshed_at),
           warn_at = CASE WHEN o.clear_warning THEN NULL ELSE s.warn_at END,
           lease_owner = NULL, lease_token = NULL, lease_until = NULL
      FROM o JOIN locked USING (connection_id)
     WHERE s.connection_id = o.connection_id AND s.lease_token = o.lease_token
    """


async def record_outcomes(conn: DriverConnection, writes: Sequence[OutcomeWrite]) -> None:
    """Apply outcomes in one statement; a write whose lease was taken over is dropped."""
    if writes:
        # One row per connection (an UPDATE applies one of several matches, unpredictably): the last.
        writes = list({w.connection_id: w for w in writes}.values())
        outcomes = [
            {
                "connection_id": w.connection_id,
                "lease_token": str(w.lease_token),
                "state": w.state,
                "end_reason": w.end_reason,
                "expires_at": _iso(w.expires_at),
                "due_at": _iso(w.due_at),
                "next_attempt_at": _iso(w.next_attempt_at),
                "reset_attempts": w.reset_attempts,
                "attempts_delta": w.attempts_delta,
                "last_error": w.last_error,
                "refreshed_at": _iso(w.refreshed_at),
                "clear_warning": w.clear_warning,
            }
            for w in writes
        ]
        await conn.execute(
            _RECORD_OUTCOMES,
            {"outcomes": json.dumps(outcomes), "ids": sorted(w.connection_id for w in writes)},
            prepare=True,
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class DueWarning:
    """A connection whose hard expiry has entered the warning window."""

    connection_id: str
    tenant_id: str
    owner: str
    provider: str
    hard_expires_at: datetime


_CLAIM_DUE_WARNINGS = """
    SELECT connection_id, tenant_id, owner, provider, hard_expires_at
      FROM refresher.refresh_schedule
     WHERE warn_at IS NOT NULL AND warn_at <= %(now)s
     ORDER BY warn_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
    """


async def claim_due_warnings(conn: DriverConnection, *, now: datetime, limit: int) -> list[DueWarning]:
    """Lock up to ``limit`` rows whose expiry warning is due (the caller marks them warned)."""
    async with conn.cursor(row_factory=class_row(DueWarning)) as cursor:
        await cursor.execute(_CLAIM_DUE_WARNINGS, {"now": now, "limit": limit})
        return await cursor.fetchall()


_MARK_WARNED = """
    UPDATE refresher.refresh_schedule AS s
       SET warn_at = NULL, warned_expiry_at = w.hard_expires_at
      FROM unnest(CAST(%(ids)s AS text[]), CAST(%(expiries)s AS timestamptz[]))
           AS w(connection_id, hard_expires_at)
     WHERE s.connection_id = w.connection_id
    """


async def mark_warned(conn: DriverConnection, warnings: Sequence[DueWarning]) -> None:
    """Remember that each warning was given for its expiry, so it is given once."""
    if warnings:
        await conn.execute(
            _MARK_WARNED,
            {"ids": [w.connection_id for w in warnings], "expiries": [w.hard_expires_at for w in warnings]},
        )


_DUE_COUNTS = """
    SELECT provider, count(*) FROM refresher.refresh_schedule
     WHERE state = 'scheduled' AND next_attempt_at <= %(now)s
     GROUP BY provider
    """


async def due_counts(conn: DriverConnection, *, now: datetime) -> dict[str, int]:
    """How many scheduled rows are due now, per provider (reads only the due part of the index)."""
    cursor = await conn.execute(_DUE_COUNTS, {"now": now})
    return {provider: int(count) for provider, count in await cursor.fetchall()}


# A refresh whose new expiry the worker already wrote from the vault's reply changes nothing but the
# ordering stamp: advance the stamp in one statement instead of inbox insert + row lock + rewrite.
# The conditions are exactly those under which applying the event would leave the schedule as it is.
# The same stamp for a batch of refreshes (each connection at most once) in one statement. It first
# locks every row the caller's batch will touch, in connection order (as every other batch of the
# service locks them), so the statements that follow it in the transaction take no new row locks.
_STAMP_RECORDED_REFRESHES = """
    WITH v AS (
        SELECT * FROM unnest(CAST(%(connection_ids)s AS text[]), CAST(%(event_ids)s AS uuid[]),
                             CAST(%(occurred_ats)s AS timestamptz[]), CAST(%(expires_ats)s AS timestamptz[]),
                             CAST(%(refresh_expiries)s AS timestamptz[]))
               AS v(connection_id, event_id, occurred_at, expires_at, refresh_expiry)
    ), locked AS (
        SELECT s.connection_id FROM refresher.refresh_schedule AS s
         WHERE s.connection_id = ANY(CAST(%(lock_ids)s AS text[]))
         ORDER BY s.connection_id
         FOR UPDATE
    )
    UPDATE refresher.refresh_schedule AS s
       SET last_event_at = v.occurred_at, last_event_id = v.event_id
      FROM v JOIN locked USING (connection_id)
     WHERE s.connection_id = v.connection_id
       AND s.state = 'scheduled' AND s.lease_token IS NULL
       AND s.expires_at >= v.expires_at
       AND s.refresh_token_expires_at IS NOT DISTINCT FROM v.refresh_expiry
       AND s.hard_expires_at IS NOT DISTINCT FROM s.refresh_token_expires_at
       AND (s.last_event_at, s.last_event_id) < (v.occurred_at, v.event_id)
    RETURNING v.event_id
    """


@dataclass(frozen=True)
class RecordedRefresh:
    """A ``connections.refreshed`` event's facts, for ``stamp_recorded_refreshes``."""

    connection_id: str
    event_id: uuid.UUID
    occurred_at: datetime
    expires_at: datetime
    refresh_token_expires_at: datetime | None


async def stamp_recorded_refreshes(
    conn: DriverConnection, refreshes: Sequence[RecordedRefresh], *, lock_connection_ids: Sequence[str]
) -> set[uuid.UUID]:
    """Stamp the refreshes the schedule already holds (each connection at most once); the ids stamped.

    Every row of ``lock_connection_ids`` is locked first, in connection order.
    """
    if not refreshes:
        return set()
    cursor = await conn.execute(
        _STAMP_RECORDED_REFRESHES,
        {
            "connection_ids": [r.connection_id for r in refreshes],
            "event_ids": [r.event_id for r in refreshes],
            "occurred_ats": [r.occurred_at for r in refreshes],
            "expires_ats": [r.expires_at for r in refreshes],
            "refresh_expiries": [r.refresh_token_expires_at for r in refreshes],
            "lock_ids": sorted(set(lock_connection_ids)),
        },
        prepare=True,
    )
    return {row[0] for row in await cursor.fetchall()}


_LOAD_FOR_UPDATE = f"""
    SELECT {", ".join(_ENTRY_FIELDS)} FROM refresher.refresh_schedule
     WHERE connection_id = ANY(CAST(%(ids)s AS text[]))
     ORDER BY connection_id
       FOR UPDATE
    """  # noqa: S608 - the names come from ScheduleEntry's fields, never from input


async def load_many_for_update(
    conn: DriverConnection, connection_ids: Sequence[str]
) -> dict[str, ScheduleEntry]:
    """The entries of these connections (those that exist), locked in connection order."""
    if not connection_ids:
        return {}
    cursor = await conn.execute(_LOAD_FOR_UPDATE, {"ids": sorted(set(connection_ids))}, prepare=True)
    entries = [ScheduleEntry(*row) for row in await cursor.fetchall()]
    return {entry.connection_id: entry for entry in entries}


_LEASE_COLUMNS = ("lease_owner", "lease_token", "lease_until")
# save_entry for many entries, as one prepared statement run for each (built once, not per call).
# The names come from ScheduleEntry's fields, never from input.
_SAVE_ENTRY = f"""
    INSERT INTO refresher.refresh_schedule ({", ".join(_ENTRY_FIELDS + _LEASE_COLUMNS)})
    VALUES ({", ".join(f"%({name})s" for name in _ENTRY_FIELDS)}, NULL, NULL, NULL)
    ON CONFLICT (connection_id) DO UPDATE
       SET {", ".join(f"{name} = EXCLUDED.{name}" for name in _ENTRY_FIELDS[1:] + _LEASE_COLUMNS)}
     WHERE (refresh_schedule.last_event_at, refresh_schedule.last_event_id)
           < (EXCLUDED.last_event_at, EXCLUDED.last_event_id)
    """  # noqa: S608


async def save_entries(conn: DriverConnection, entries: Sequence[ScheduleEntry]) -> None:
    """Insert entries or overwrite older ones (one per connection), in one round trip.

    An overwritten row's lease is dropped (its outcome is now stale); a row holding a newer event
    than the entry's is left alone.
    """
    if entries:
        ordered = sorted(entries, key=lambda e: e.connection_id)
        async with conn.cursor() as cursor:
            await cursor.executemany(_SAVE_ENTRY, [_shallow(entry, _ENTRY_FIELDS) for entry in ordered])


_RECORD_FIRST_DELIVERIES = """
    INSERT INTO refresher.processed_events (consumer, event_id)
    SELECT %(consumer)s, id FROM unnest(CAST(%(ids)s AS uuid[])) AS id
    ON CONFLICT DO NOTHING
    RETURNING event_id
    """


async def record_first_deliveries(
    conn: DriverConnection, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """``first_delivery`` for many events in one statement: the ids not recorded before."""
    if not event_ids:
        return set()
    cursor = await conn.execute(
        _RECORD_FIRST_DELIVERIES, {"consumer": consumer, "ids": list(event_ids)}, prepare=True
    )
    return {row[0] for row in await cursor.fetchall()}
