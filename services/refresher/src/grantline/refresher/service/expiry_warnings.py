"""Use case: announce known hard expiries once, inside the warning window, through the outbox."""

from datetime import datetime

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.contract.connections import ConnectionExpiring
from grantline.refresher.adapters.schedule_repository import DueWarning, claim_due_warnings, mark_warned
from grantline.runtime.outbox import add_events


async def publish_due_warnings(
    session: AsyncSession, outbox: Table, *, now: datetime, limit: int
) -> list[DueWarning]:
    """Write ``connections.expiring`` for due warnings (expiries already past are only marked)."""
    due = await claim_due_warnings(session, now=now, limit=limit)
    events = [
        ConnectionExpiring(
            tenant_id=w.tenant_id,
            connection_id=w.connection_id,
            owner=w.owner,
            provider=w.provider,
            expires_at=w.hard_expires_at,
        )
        for w in due
        if w.hard_expires_at > now
    ]
    await add_events(session, outbox, events)
    await mark_warned(session, due)
    await session.flush()
    return [w for w in due if w.hard_expires_at > now]
