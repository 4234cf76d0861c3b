"""Connection events (CONNECTIONS) and refresh failures (AUDIT ``token.refresh_failed``) become queued
deliveries, a batch per transaction. The unique (endpoint, event) key makes a redelivered event queue
nothing new, so no inbox is needed."""

from __future__ import annotations

from grantline.contract.registry import decode_event
from grantline.notifier.domain.notifications import notification_for
from grantline.notifier.service.fan_out import queue_deliveries
from grantline.notifier.settings import NotifierSettings
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import NOTIFIER_CONNECTIONS, NOTIFIER_REFRESH_FAILED
from grantline.runtime.service_runtime import ServiceRuntime


async def _queue(conn: DriverConnection, batch: list[Received]) -> None:
    notifications = [n for n in (notification_for(r.event) for r in batch) if n is not None]
    await queue_deliveries(conn, notifications)


def event_consumers(runtime: ServiceRuntime, settings: NotifierSettings) -> list[BatchedConsumer]:
    """The two consumers (their loops are the runtime's background tasks)."""
    return [
        BatchedConsumer(
            runtime,
            consumer=consumer,
            decode=decode_event,
            handle=_queue,
            unit_of_work=runtime.driver_transaction,
            loops=1,
            batch_size=settings.event_batch_size,
        )
        for consumer in (NOTIFIER_CONNECTIONS, NOTIFIER_REFRESH_FAILED)
    ]
