"""NATS entrypoint: the CONNECTIONS consumer that keeps the schedule in step with grants."""

from functools import partial

from grantline.contract.connections import (
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    TokenRefreshed,
)
from grantline.contract.registry import decode_event
from grantline.refresher.domain.schedule import SchedulePolicy
from grantline.refresher.service.schedule_updates import (
    apply_connection_events,
    skip_recorded_refreshes,
)
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import REFRESHER_SCHEDULE
from grantline.runtime.service_runtime import ServiceRuntime

DURABLE = REFRESHER_SCHEDULE.durable
SCHEDULE_EVENTS = (ConnectionGranted, TokenRefreshed, ConnectionRevoked, ReauthRequired)
BATCH_SIZE = 100


def subscribe_connection_events(runtime: ServiceRuntime, policy: SchedulePolicy, *, workers: int) -> None:
    """Register the durable consumer of ``connections.>`` that updates the schedule (batch by batch)."""

    async def handle(conn: DriverConnection, batch: list[Received]) -> None:
        events = [r.event for r in batch if isinstance(r.event, SCHEDULE_EVENTS)]
        # Rows are locked in connection order, so two replicas' batches cannot deadlock; within a
        # connection the events go oldest first (apply_event ignores an older one either way).
        events.sort(key=lambda e: (e.connection_id, e.occurred_at, e.id))
        # Most events are refreshes the worker already recorded: one statement stamps them all
        # (and locks every row of the batch, in connection order); the rest are applied as a batch.
        stamped, _ = await skip_recorded_refreshes(conn, events)
        await apply_connection_events(
            conn, DURABLE, [event for event in events if event.id not in stamped], policy
        )

    consumer = BatchedConsumer(
        runtime,
        consumer=REFRESHER_SCHEDULE,
        decode=decode_event,
        handle=handle,
        loops=workers,
        batch_size=BATCH_SIZE,
        # On psycopg directly (grantline.runtime.db.driver): a batch per refresh wave, hundreds a second.
        # Schedule updates never write an event, so the relay is not woken.
        unit_of_work=partial(runtime.driver_transaction, wake_relay=False),
    )
    runtime.on_start(consumer.subscribe)
    runtime.add_background_task(consumer.run)
