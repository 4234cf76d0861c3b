"""Use case: announce known hard expiries once, inside the warning window, through the outbox."""

from datetime import datetime

from grantline.contract.connections import ConnectionExpiring
from grantline.refresher.adapters.schedule_repository import DueWarning, claim_due_warnings, mark_warned
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import OutboxLocation, write_events


async def publish_due_warnings(
    conn: DriverConnection, outbox: OutboxLocation, *, now: datetime, limit: int
) -> list[DueWarning]:
    """Write ``connections.expiring`` for due warnings (expiries already past are only marked)."""
    due = await claim_due_warnings(conn, now=now, limit=limit)
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
    await write_events(conn, outbox, events)
    await mark_warned(conn, due)
    return [w for w in due if w.hard_expires_at > now]
