"""Durable consumers of connection events, finished runs and resolve records, a batch per transaction.

``first_delivery`` makes a redelivered event change nothing; events leave through the outbox in the
same transaction, so a crash between commit and acknowledgement re-runs nothing observable. Each batch
takes every lock its events need up front, in the global order, so concurrent batches cannot deadlock;
events are then applied one after the other in arrival order, exactly as one transaction each would.
"""

from __future__ import annotations

import uuid

from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.connections import (
    ConnectionEvent,
    ProviderEnablementChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
    WebhookReceived,
)
from grantline.contract.registry import decode_event
from grantline.contract.runs import RunFinished
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import (
    SATISFACTION_CONNECTIONS,
    SATISFACTION_RUNS_FINISHED,
    SATISFACTION_TOKEN_RESOLVED,
)
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.adapters.inbox_and_locks import record_and_lock
from grantline.satisfaction.adapters.outbox import OUTBOX
from grantline.satisfaction.entrypoints.run_request_batches import TOP_UP_SECONDS
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.connection_updates import apply_connection_event
from grantline.satisfaction.service.revocations import remember_resolution
from grantline.satisfaction.service.run_admission import finish
from grantline.satisfaction.service.run_grants import RunGrantIssuer
from grantline.satisfaction.settings import SatisfactionSettings

CONNECTIONS_DURABLE = SATISFACTION_CONNECTIONS.durable
RUNS_FINISHED_DURABLE = SATISFACTION_RUNS_FINISHED.durable
TOKEN_RESOLVED_DURABLE = SATISFACTION_TOKEN_RESOLVED.durable
TOKEN_RESOLVED_SUBJECT = f"audit.{AuditAction.TOKEN_RESOLVED}"


async def _record_and_lock_connection_events(conn: DriverConnection, batch: list[Received]) -> set[uuid.UUID]:
    exclusive: set[str] = set()
    users: set[tuple[str, str]] = set()
    for received in batch:
        event = received.event
        if isinstance(
            event, WebhookReceived | TenantProviderDefined | TenantProviderRemoved | ProviderEnablementChanged
        ):
            exclusive.add(event.tenant_id)
        elif isinstance(event, ConnectionEvent):
            user_id = event.user_id()
            if user_id is None:
                exclusive.add(event.tenant_id)
            else:
                users.add((event.tenant_id, user_id))
    ids = [received.event.id for received in batch]
    return await record_and_lock(conn, CONNECTIONS_DURABLE, ids, users=users, exclusive_tenants=exclusive)


def _first_in_batch(fresh: set[uuid.UUID], event_id: uuid.UUID) -> bool:
    # Seen for the first time, and not already handled earlier in this batch (a duplicate delivery).
    if event_id not in fresh:
        return False
    fresh.discard(event_id)
    return True


def event_consumers(
    runtime: ServiceRuntime, settings: SatisfactionSettings, catalogue: CatalogueCache, grants: RunGrantIssuer
) -> list[BatchedConsumer]:
    """The service's durable consumers besides ``runs.requested`` (run each one's ``run`` as a task)."""

    async def on_connection_events(conn: DriverConnection, batch: list[Received]) -> None:
        fresh = await _record_and_lock_connection_events(conn, batch)
        for received in batch:
            if _first_in_batch(fresh, received.event.id):
                with received.traced(CONNECTIONS_DURABLE):
                    await apply_connection_event(conn, OUTBOX, catalogue, grants, received.event, locked=True)

    async def on_runs_finished(conn: DriverConnection, batch: list[Received]) -> None:
        fresh = await record_and_lock(conn, RUNS_FINISHED_DURABLE, [received.event.id for received in batch])
        for received in batch:
            event = received.event
            if isinstance(event, RunFinished) and _first_in_batch(fresh, event.id):
                await finish(conn, event)

    async def on_tokens_resolved(conn: DriverConnection, batch: list[Received]) -> None:
        records = [
            (received, received.event)
            for received in batch
            if isinstance(received.event, AuditRecord) and received.event.action == AuditAction.TOKEN_RESOLVED
        ]
        users = {(record.tenant_id, record.user_id) for _, record in records if record.user_id}
        ids = [received.event.id for received in batch]
        fresh = await record_and_lock(conn, TOKEN_RESOLVED_DURABLE, ids, users=users)
        for received, record in records:
            if _first_in_batch(fresh, record.id):
                with received.traced(TOKEN_RESOLVED_DURABLE):
                    await remember_resolution(conn, OUTBOX, record, locked=True)

    common = {
        "decode": decode_event,
        "batch_size": settings.event_batch_size,
        "top_up_seconds": TOP_UP_SECONDS,
    }
    return [
        BatchedConsumer(
            runtime,
            consumer=SATISFACTION_CONNECTIONS,
            handle=on_connection_events,
            loops=settings.connection_workers,
            unit_of_work=runtime.driver_transaction,
            **common,  # type: ignore[arg-type]
        ),
        BatchedConsumer(
            runtime,
            consumer=SATISFACTION_RUNS_FINISHED,
            handle=on_runs_finished,
            loops=settings.event_workers,
            unit_of_work=runtime.driver_transaction,
            **common,  # type: ignore[arg-type]
        ),
        BatchedConsumer(
            runtime,
            consumer=SATISFACTION_TOKEN_RESOLVED,
            handle=on_tokens_resolved,
            loops=settings.event_workers,
            unit_of_work=runtime.driver_transaction,
            **common,  # type: ignore[arg-type]
        ),
    ]
