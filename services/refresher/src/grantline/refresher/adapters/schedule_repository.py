"""Postgres access to the refresh schedule: entries, claims with leases, outcomes, warnings."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ARRAY, String, bindparam, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.refresher.adapters.tables import refresh_schedule as t
from grantline.refresher.domain.schedule import ScheduleEntry

_ENTRY_COLUMNS = [t.c[name] for name in ScheduleEntry.__dataclass_fields__]
_ENTRY_FIELDS = tuple(f.name for f in fields(ScheduleEntry))


def _shallow(instance: object, names: Sequence[str]) -> dict[str, object]:
    # dataclasses.asdict deep-copies every value (each datetime's tzinfo included); the values here
    # are immutable, so a shallow read is the same dict for a fraction of the CPU.
    return {name: getattr(instance, name) for name in names}


async def load_for_update(session: AsyncSession, connection_id: str) -> ScheduleEntry | None:
    """The entry of a connection, locked until the transaction ends (None when unknown)."""
    row = (
        await session.execute(
            select(*_ENTRY_COLUMNS).where(t.c.connection_id == connection_id).with_for_update()
        )
    ).first()
    return ScheduleEntry(**row._mapping) if row is not None else None


async def save_entry(session: AsyncSession, entry: ScheduleEntry) -> None:
    """Insert or overwrite an older entry; any lease on it is dropped (its outcome is now stale)."""
    values = {**_shallow(entry, _ENTRY_FIELDS), "lease_owner": None, "lease_token": None, "lease_until": None}
    statement = insert(t).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[t.c.connection_id],
            set_={name: statement.excluded[name] for name in values if name != "connection_id"},
            # Guarded here too: two handlers may both have seen "no row yet" for one connection.
            where=tuple_(t.c.last_event_at, t.c.last_event_id)
            < tuple_(statement.excluded.last_event_at, statement.excluded.last_event_id),
        )
    )


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
_CLAIM_DUE = text(
    """
    WITH due AS (
        SELECT connection_id FROM refresher.refresh_schedule
         WHERE state = 'scheduled' AND next_attempt_at <= :now AND provider <> ALL(CAST(:busy AS text[]))
         ORDER BY next_attempt_at
         LIMIT :limit
         FOR UPDATE SKIP LOCKED
    )
    UPDATE refresher.refresh_schedule AS s
       SET lease_owner = :owner, lease_token = gen_random_uuid(), lease_until = :until,
           next_attempt_at = :until, attempts = s.attempts + 1
      FROM due
     WHERE s.connection_id = due.connection_id
 RETURNING s.connection_id, s.tenant_id, s.provider, s.expires_at, s.due_at, s.attempts, s.lease_token
    """
)


async def claim_due(
    session: AsyncSession,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    skip_providers: Sequence[str] = (),
) -> list[ClaimedRefresh]:
    """Claim up to ``limit`` due rows for ``owner`` until ``lease_until`` (none of ``skip_providers``)."""
    rows = await session.execute(
        _CLAIM_DUE,
        {"now": now, "until": lease_until, "owner": owner, "limit": limit, "busy": list(skip_providers)},
    )
    return [ClaimedRefresh(**row._mapping) for row in rows]


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


_OUTCOME_FIELDS = tuple(f.name for f in fields(OutcomeWrite))

_RECORD_OUTCOME = text(
    """
    UPDATE refresher.refresh_schedule
       SET state = :state, end_reason = :end_reason, expires_at = :expires_at, due_at = :due_at,
           next_attempt_at = :next_attempt_at,
           attempts = CASE WHEN :reset_attempts THEN 0 ELSE greatest(0, attempts + :attempts_delta) END,
           last_error = :last_error,
           last_refreshed_at = coalesce(CAST(:refreshed_at AS timestamptz), last_refreshed_at),
           warn_at = CASE WHEN :clear_warning THEN NULL ELSE warn_at END,
           lease_owner = NULL, lease_token = NULL, lease_until = NULL
     WHERE connection_id = :connection_id AND lease_token = :lease_token
    """
)


async def record_outcomes(session: AsyncSession, writes: Sequence[OutcomeWrite]) -> None:
    """Apply outcomes in one round of statements; a write whose lease was taken over is dropped."""
    if writes:
        # Rows are locked in connection order, as the schedule consumer locks them: no deadlock.
        ordered = sorted(writes, key=lambda w: w.connection_id)
        await session.execute(_RECORD_OUTCOME, [_shallow(w, _OUTCOME_FIELDS) for w in ordered])


@dataclass(frozen=True)
class DueWarning:
    """A connection whose hard expiry has entered the warning window."""

    connection_id: str
    tenant_id: str
    owner: str
    provider: str
    hard_expires_at: datetime


async def claim_due_warnings(session: AsyncSession, *, now: datetime, limit: int) -> list[DueWarning]:
    """Lock up to ``limit`` rows whose expiry warning is due (the caller marks them warned)."""
    rows = await session.execute(
        select(t.c.connection_id, t.c.tenant_id, t.c.owner, t.c.provider, t.c.hard_expires_at)
        .where(t.c.warn_at.is_not(None), t.c.warn_at <= now)
        .order_by(t.c.warn_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [DueWarning(**row._mapping) for row in rows]


async def mark_warned(session: AsyncSession, warnings: Sequence[DueWarning]) -> None:
    """Remember that each warning was given for its expiry, so it is given once."""
    if warnings:
        await session.execute(
            update(t)
            .where(t.c.connection_id == bindparam("b_connection_id"))
            .values(warn_at=None, warned_expiry_at=bindparam("b_hard_expires_at")),
            [{"b_connection_id": w.connection_id, "b_hard_expires_at": w.hard_expires_at} for w in warnings],
        )


async def due_counts(session: AsyncSession, *, now: datetime) -> dict[str, int]:
    """How many scheduled rows are due now, per provider (reads only the due part of the index)."""
    rows = await session.execute(
        select(t.c.provider, func.count())
        .where(t.c.state == "scheduled", t.c.next_attempt_at <= now)
        .group_by(t.c.provider)
    )
    return {provider: int(count) for provider, count in rows}


# A refresh whose new expiry the worker already wrote from the vault's reply changes nothing but the
# ordering stamp: advance the stamp in one statement instead of inbox insert + row lock + rewrite.
# The conditions are exactly those under which applying the event would leave the schedule as it is.
_STAMP_RECORDED_REFRESH = text(
    """
    UPDATE refresher.refresh_schedule
       SET last_event_at = :occurred_at, last_event_id = :event_id
     WHERE connection_id = :connection_id
       AND state = 'scheduled' AND lease_token IS NULL
       AND expires_at >= :expires_at
       AND refresh_token_expires_at IS NOT DISTINCT FROM CAST(:refresh_expiry AS timestamptz)
       AND hard_expires_at IS NOT DISTINCT FROM refresh_token_expires_at
       AND (last_event_at, last_event_id) < (:occurred_at, :event_id)
    RETURNING 1
    """
)


async def stamp_if_refresh_recorded(
    session: AsyncSession,
    *,
    connection_id: str,
    event_id: uuid.UUID,
    occurred_at: datetime,
    expires_at: datetime,
    refresh_token_expires_at: datetime | None,
) -> bool:
    """Advance the row's event stamp when it already holds this refresh's outcome; True if it did."""
    result = await session.execute(
        _STAMP_RECORDED_REFRESH,
        {
            "connection_id": connection_id,
            "event_id": event_id,
            "occurred_at": occurred_at,
            "expires_at": expires_at,
            "refresh_expiry": refresh_token_expires_at,
        },
    )
    return result.first() is not None


# The same stamp for a batch of refreshes (each connection at most once) in one statement. It first
# locks every row the caller's batch will touch, in connection order (as every other batch of the
# service locks them), so the statements that follow it in the transaction take no new row locks.
_STAMP_RECORDED_REFRESHES = text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:connection_ids AS text[]), CAST(:event_ids AS uuid[]),
                             CAST(:occurred_ats AS timestamptz[]), CAST(:expires_ats AS timestamptz[]),
                             CAST(:refresh_expiries AS timestamptz[]))
               AS v(connection_id, event_id, occurred_at, expires_at, refresh_expiry)
    ), locked AS (
        SELECT s.connection_id FROM refresher.refresh_schedule AS s
         WHERE s.connection_id = ANY(CAST(:lock_ids AS text[]))
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
)


@dataclass(frozen=True)
class RecordedRefresh:
    """A ``connections.refreshed`` event's facts, for ``stamp_recorded_refreshes``."""

    connection_id: str
    event_id: uuid.UUID
    occurred_at: datetime
    expires_at: datetime
    refresh_token_expires_at: datetime | None


async def stamp_recorded_refreshes(
    session: AsyncSession, refreshes: Sequence[RecordedRefresh], *, lock_connection_ids: Sequence[str]
) -> set[uuid.UUID]:
    """``stamp_if_refresh_recorded`` for many connections (each at most once); the ids it stamped."""
    if not refreshes:
        return set()
    result = await session.execute(
        _STAMP_RECORDED_REFRESHES,
        {
            "connection_ids": [r.connection_id for r in refreshes],
            "event_ids": [r.event_id for r in refreshes],
            "occurred_ats": [r.occurred_at for r in refreshes],
            "expires_ats": [r.expires_at for r in refreshes],
            "refresh_expiries": [r.refresh_token_expires_at for r in refreshes],
            "lock_ids": sorted(set(lock_connection_ids)),
        },
    )
    return {row[0] for row in result}


async def load_many_for_update(
    session: AsyncSession, connection_ids: Sequence[str]
) -> dict[str, ScheduleEntry]:
    """The entries of these connections (those that exist), locked in connection order."""
    if not connection_ids:
        return {}
    rows = await session.execute(
        select(*_ENTRY_COLUMNS)
        .where(t.c.connection_id == func.any(bindparam("ids", type_=ARRAY(String))))
        .order_by(t.c.connection_id)
        .with_for_update(),
        {"ids": sorted(set(connection_ids))},
    )
    return {row.connection_id: ScheduleEntry(**row._mapping) for row in rows}


_LEASE_COLUMNS = ("lease_owner", "lease_token", "lease_until")
# save_entry for many entries, as one prepared statement run for each (built once, not per call).
# The names come from ScheduleEntry's fields, never from input.
_SAVE_ENTRY = text(
    f"""
    INSERT INTO refresher.refresh_schedule ({", ".join(_ENTRY_FIELDS + _LEASE_COLUMNS)})
    VALUES ({", ".join(":" + name for name in _ENTRY_FIELDS)}, NULL, NULL, NULL)
    ON CONFLICT (connection_id) DO UPDATE
       SET {", ".join(f"{name} = EXCLUDED.{name}" for name in _ENTRY_FIELDS[1:] + _LEASE_COLUMNS)}
     WHERE (refresh_schedule.last_event_at, refresh_schedule.last_event_id)
           < (EXCLUDED.last_event_at, EXCLUDED.last_event_id)
    """  # noqa: S608
)


async def save_entries(session: AsyncSession, entries: Sequence[ScheduleEntry]) -> None:
    """``save_entry`` for many entries (one per connection) in one round of statements."""
    if entries:
        ordered = sorted(entries, key=lambda e: e.connection_id)
        await session.execute(_SAVE_ENTRY, [_shallow(entry, _ENTRY_FIELDS) for entry in ordered])


async def record_first_deliveries(
    session: AsyncSession, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """``first_delivery`` for many events in one statement: the ids not recorded before."""
    if not event_ids:
        return set()
    result = await session.execute(
        text(
            """
            INSERT INTO refresher.processed_events (consumer, event_id)
            SELECT :consumer, id FROM unnest(CAST(:ids AS uuid[])) AS id
            ON CONFLICT DO NOTHING
            RETURNING event_id
            """
        ),
        {"consumer": consumer, "ids": list(event_ids)},
    )
    return {row[0] for row in result}
