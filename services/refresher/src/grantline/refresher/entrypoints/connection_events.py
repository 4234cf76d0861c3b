"""NATS entrypoint: the CONNECTIONS consumer that keeps the schedule in step with grants."""

from grantline.common.contract.connections import (
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    TokenRefreshed,
)
from grantline.common.contract.envelope import Event
from grantline.common.inbox import first_delivery
from grantline.common.nats.consuming import Delivery, subscribe_events
from grantline.common.nats.streams import CONNECTIONS
from grantline.common.runtime import ServiceRuntime
from grantline.refresher.adapters.tables import processed_events
from grantline.refresher.domain.schedule import SchedulePolicy
from grantline.refresher.service.schedule_updates import apply_connection_event, skip_recorded_refresh

DURABLE = "refresher-schedule"
SCHEDULE_EVENTS = (ConnectionGranted, TokenRefreshed, ConnectionRevoked, ReauthRequired)


def subscribe_connection_events(runtime: ServiceRuntime, policy: SchedulePolicy, *, workers: int) -> None:
    """Register the durable consumer of ``connections.>`` that updates the schedule."""

    async def handle(event: Event, delivery: Delivery) -> None:
        if not isinstance(event, SCHEDULE_EVENTS):
            return  # expiring (our own), webhooks: nothing to schedule
        async with runtime.transaction() as session:
            if isinstance(event, TokenRefreshed) and await skip_recorded_refresh(session, event):
                return
            if await first_delivery(session, processed_events, DURABLE, event.id):
                await apply_connection_event(session, event, policy)

    subscribe_events(
        runtime.broker,
        service=runtime.name,
        durable=DURABLE,
        stream=CONNECTIONS,
        subject="connections.>",
        handler=handle,
        max_workers=workers,
        batch_size=100,
    )
