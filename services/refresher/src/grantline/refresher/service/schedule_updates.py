"""Use case: keep the schedule in step with connection events (the caller owns the transaction)."""

from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.connections import ConnectionEvent
from grantline.refresher.adapters.schedule_repository import load_for_update, save_entry
from grantline.refresher.domain.schedule import SchedulePolicy, apply_event


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
