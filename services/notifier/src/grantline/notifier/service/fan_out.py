"""Use case: queue a delivery of each notification to every endpoint of its tenant that wants it."""

from __future__ import annotations

import uuid

from grantline.notifier.adapters import repository
from grantline.notifier.domain.notifications import Notification
from grantline.runtime.db.driver import DriverConnection


async def queue_deliveries(conn: DriverConnection, notifications: list[Notification]) -> int:
    """Queue the deliveries (an event seen again queues nothing new); returns how many were asked for."""
    rows = []
    for notification in notifications:
        for endpoint_id in await repository.endpoints_wanting(
            conn, notification.tenant_id, notification.type
        ):
            rows.append(
                {
                    "delivery_id": f"msg_{uuid.uuid4().hex}",
                    "tenant_id": notification.tenant_id,
                    "endpoint_id": endpoint_id,
                    "event_id": notification.event_id,
                    "event_type": notification.type,
                    "connection_id": notification.connection_id,
                    "body": notification.body,
                }
            )
    await repository.insert_deliveries(conn, rows)
    return len(rows)
