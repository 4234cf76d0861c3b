"""Durable consumers: each event is handled in one transaction that records it as processed.

``first_delivery`` makes a redelivered event change nothing; events leave through the outbox in the
same transaction, so a crash between commit and acknowledgement re-runs nothing observable.
"""

from __future__ import annotations

from grantline.common.contract.audit import AuditAction, AuditRecord
from grantline.common.contract.envelope import Event
from grantline.common.contract.runs import RunFinished
from grantline.common.inbox import first_delivery
from grantline.common.nats.consuming import Delivery, subscribe_events
from grantline.common.nats.streams import AUDIT, CONNECTIONS, RUNS
from grantline.common.runtime import ServiceRuntime
from grantline.satisfaction.adapters.tables import outbox, processed_events
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.connection_updates import apply_connection_event
from grantline.satisfaction.service.revocations import remember_resolution
from grantline.satisfaction.service.run_admission import finish
from grantline.satisfaction.settings import SatisfactionSettings

CONNECTIONS_DURABLE = "satisfaction-connections"
RUNS_FINISHED_DURABLE = "satisfaction-runs-finished"
TOKEN_RESOLVED_DURABLE = "satisfaction-token-resolved"
TOKEN_RESOLVED_SUBJECT = f"audit.{AuditAction.TOKEN_RESOLVED}"


def register_consumers(
    runtime: ServiceRuntime, settings: SatisfactionSettings, catalogue: CatalogueCache
) -> None:
    """Subscribe the service's durable consumers on ``runtime.broker``."""

    async def on_connection_event(event: Event, delivery: Delivery) -> None:
        async with runtime.transaction() as session:
            if await first_delivery(session, processed_events, CONNECTIONS_DURABLE, event.id):
                await apply_connection_event(session, outbox, catalogue.view, event)

    async def on_run_finished(event: Event, delivery: Delivery) -> None:
        if not isinstance(event, RunFinished):
            return
        async with runtime.transaction() as session:
            if await first_delivery(session, processed_events, RUNS_FINISHED_DURABLE, event.id):
                await finish(session, event)

    async def on_token_resolved(event: Event, delivery: Delivery) -> None:
        if not isinstance(event, AuditRecord) or event.action != AuditAction.TOKEN_RESOLVED:
            return
        async with runtime.transaction() as session:
            if await first_delivery(session, processed_events, TOKEN_RESOLVED_DURABLE, event.id):
                await remember_resolution(session, outbox, event)

    broker, name = runtime.broker, runtime.name
    subscribe_events(
        broker,
        service=name,
        durable=CONNECTIONS_DURABLE,
        stream=CONNECTIONS,
        subject="connections.>",
        handler=on_connection_event,
        max_workers=settings.connection_workers,
    )
    subscribe_events(
        broker,
        service=name,
        durable=RUNS_FINISHED_DURABLE,
        stream=RUNS,
        subject=RunFinished.SUBJECT,
        handler=on_run_finished,
        max_workers=settings.event_workers,
    )
    subscribe_events(
        broker,
        service=name,
        durable=TOKEN_RESOLVED_DURABLE,
        stream=AUDIT,
        subject=TOKEN_RESOLVED_SUBJECT,
        handler=on_token_resolved,
        max_workers=settings.event_workers,
    )
