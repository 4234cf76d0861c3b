"""Use case: keep the schedule in step with connection events (the caller owns the transaction)."""

from collections import Counter
from collections.abc import Sequence
from uuid import UUID

from grantline.contract.connections import ConnectionEvent, TokenRefreshed
from grantline.refresher.adapters.schedule_repository import (
    RecordedRefresh,
    load_many_for_update,
    record_first_deliveries,
    save_entries,
    stamp_recorded_refreshes,
)
from grantline.refresher.domain.schedule import ScheduleEntry, SchedulePolicy, apply_event
from grantline.runtime.db.driver import DriverConnection


async def skip_recorded_refreshes(
    conn: DriverConnection, events: Sequence[ConnectionEvent]
) -> tuple[set[UUID], set[UUID]]:
    """Skip the refreshes the schedule already holds, in one statement: (ids skipped, ids checked).

    A refresh the worker already recorded from the vault's reply would change only the row's
    ordering stamp, which this advances; such an event needs no inbox row either, as applying it
    again would change nothing. Only refreshes of connections with no other event in the batch
    qualify (the others keep the event-by-event path, which orders them); every connection of the
    batch is locked first.
    """
    per_connection = Counter(event.connection_id for event in events)
    refreshes = [
        RecordedRefresh(
            connection_id=event.connection_id,
            event_id=event.id,
            occurred_at=event.occurred_at,
            expires_at=event.expires_at,
            refresh_token_expires_at=event.refresh_token_expires_at,
        )
        for event in events
        if isinstance(event, TokenRefreshed)
        and event.expires_at is not None
        and per_connection[event.connection_id] == 1
    ]
    stamped = await stamp_recorded_refreshes(conn, refreshes, lock_connection_ids=list(per_connection))
    return stamped, {refresh.event_id for refresh in refreshes}


async def apply_connection_events(
    conn: DriverConnection, consumer: str, events: Sequence[ConnectionEvent], policy: SchedulePolicy
) -> None:
    """Apply a batch of connection events once each (inbox), in a few statements whatever its size.

    The rows are locked in connection order; events go oldest first per connection, each applied on
    top of the previous one's result (``apply_event`` ignores one older than what the row holds).
    """
    if not events:
        return
    current = await load_many_for_update(conn, [event.connection_id for event in events])
    fresh = await record_first_deliveries(conn, consumer, [event.id for event in events])
    changed: dict[str, ScheduleEntry] = {}
    for event in sorted(events, key=lambda e: (e.connection_id, e.occurred_at, e.id)):
        if event.id not in fresh:
            continue  # a redelivery of an event already applied
        updated = apply_event(current.get(event.connection_id), event, policy)
        if updated is not None:
            current[event.connection_id] = changed[event.connection_id] = updated
    await save_entries(conn, list(changed.values()))
