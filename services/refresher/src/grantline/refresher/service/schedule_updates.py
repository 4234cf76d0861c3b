"""Use case: keep the schedule in step with connection events (the caller owns the transaction)."""

from collections import Counter
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.connections import ConnectionEvent, TokenRefreshed
from grantline.refresher.adapters.schedule_repository import (
    RecordedRefresh,
    load_for_update,
    load_many_for_update,
    record_first_deliveries,
    save_entries,
    save_entry,
    stamp_if_refresh_recorded,
    stamp_recorded_refreshes,
)
from grantline.refresher.domain.schedule import ScheduleEntry, SchedulePolicy, apply_event


async def apply_connection_event(
    session: AsyncSession, event: ConnectionEvent, policy: SchedulePolicy
) -> bool:
    """Apply one connection event to its schedule entry; False when it was older than what we hold."""
    current = await load_for_update(session, event.connection_id)
    updated = apply_event(current, event, policy)
    if updated is None:
        return False
    await save_entry(session, updated)
    await session.flush()
    return True


async def skip_recorded_refresh(session: AsyncSession, event: TokenRefreshed) -> bool:
    """True when the schedule already holds this refresh (the worker wrote the vault's reply).

    Applying such an event would change only the ordering stamp, which this advances; the event
    then needs no inbox row either, as applying it again would change nothing.
    """
    if event.expires_at is None:
        return False
    return await stamp_if_refresh_recorded(
        session,
        connection_id=event.connection_id,
        event_id=event.id,
        occurred_at=event.occurred_at,
        expires_at=event.expires_at,
        refresh_token_expires_at=event.refresh_token_expires_at,
    )


async def skip_recorded_refreshes(
    session: AsyncSession, events: Sequence[ConnectionEvent]
) -> tuple[set[UUID], set[UUID]]:
    """``skip_recorded_refresh`` for a batch in one statement: (ids it skipped, ids it checked).

    Only refreshes of connections with no other event in the batch qualify (the others keep the
    event-by-event path, which orders them); every connection of the batch is locked first.
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
    stamped = await stamp_recorded_refreshes(session, refreshes, lock_connection_ids=list(per_connection))
    return stamped, {refresh.event_id for refresh in refreshes}


async def apply_connection_events(
    session: AsyncSession, consumer: str, events: Sequence[ConnectionEvent], policy: SchedulePolicy
) -> None:
    """``first_delivery`` + ``apply_connection_event`` for a batch: a few statements, not a few per event.

    The rows are locked in connection order; events go oldest first per connection, each applied on
    top of the previous one's result (``apply_event`` ignores one older than what the row holds).
    """
    if not events:
        return
    current = await load_many_for_update(session, [event.connection_id for event in events])
    fresh = await record_first_deliveries(session, consumer, [event.id for event in events])
    changed: dict[str, ScheduleEntry] = {}
    for event in sorted(events, key=lambda e: (e.connection_id, e.occurred_at, e.id)):
        if event.id not in fresh:
            continue  # a redelivery of an event already applied
        updated = apply_event(current.get(event.connection_id), event, policy)
        if updated is not None:
            current[event.connection_id] = changed[event.connection_id] = updated
    await save_entries(session, list(changed.values()))
    await session.flush()
