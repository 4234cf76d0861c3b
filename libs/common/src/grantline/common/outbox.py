"""The transactional outbox: a state change and its event commit together, a relay publishes later.

Each service has an ``outbox`` table in its own schema. ``add_event`` writes the event in the caller's
transaction; ``OutboxRelay`` publishes waiting rows to JetStream in insertion order, with the event id
as ``Nats-Msg-Id`` (so a row published twice after a crash is dropped by JetStream), and deletes them
once JetStream has acknowledged them. While NATS is down, rows wait; nothing is lost.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client
from opentelemetry import trace
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from grantline.common.contract.envelope import Event
from grantline.common.contract.registry import encode_message
from grantline.common.nats.headers import event_headers
from grantline.common.telemetry.metrics import OUTBOX_PENDING, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from grantline.common.telemetry.tracing import extract_context, inject_context, tracer

log = logging.getLogger(__name__)

# How long the relay waits for JetStream to acknowledge one publish before it retries the batch.
PUBLISH_TIMEOUT = 5.0


def outbox_columns() -> list[Column[Any]]:
    """The outbox's columns (fresh objects each call: used by the table and by each service's migration)."""
    return [
        Column("position", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text, nullable=True),
    ]


def outbox_table(metadata: MetaData) -> Table:
    """Declare the outbox table in ``metadata``'s schema (call once per service metadata)."""
    return Table("outbox", metadata, *outbox_columns())


def outbox_row(event: Event) -> dict[str, object]:
    """The outbox row for an event, with the current trace context captured for the relay."""
    trace_headers: dict[str, str] = {}
    inject_context(trace_headers)
    return {
        "event_id": event.id,
        "subject": event.subject(),
        "payload": encode_message(event),
        "headers": trace_headers,
    }


async def add_event(session: AsyncSession, outbox: Table, event: Event) -> None:
    """Write ``event`` to the outbox in the session's transaction (it commits with the state change)."""
    await session.execute(insert(outbox).values(**outbox_row(event)))


async def add_events(session: AsyncSession, outbox: Table, events: Sequence[Event]) -> None:
    """Write several events in one statement, in order."""
    if events:
        await session.execute(insert(outbox), [outbox_row(e) for e in events])


class OutboxRelay:
    """Publishes a service's outbox to JetStream, one relay active per schema at a time.

    The active relay holds a Postgres advisory lock on its own connection, so replicas stand by
    and take over when it dies; ordering is preserved because only one relay publishes.
    """

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        outbox: Table,
        nats: Client,
        batch_size: int = 200,
        idle_poll_seconds: float = 0.25,
    ) -> None:
        self._service = service
        self._engine = engine
        self._outbox = outbox
        self._nats = nats
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_key = f"outbox:{outbox.schema}"
        # One JetStream context for the relay's life: it holds the async-publish reply inbox.
        self._js = nats.jetstream(publish_async_max_pending=4 * batch_size)

    def wake(self) -> None:
        """Publish soon: called after a transaction that wrote to the outbox commits."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the relay to finish its current batch and return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped, surviving Postgres and NATS outages."""
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                async with self._engine.connect() as lock_conn:
                    if not await self._try_lock(lock_conn):
                        await self._sleep(1.0)
                        continue
                    log.info("outbox relay active", extra={"schema": self._outbox.schema})
                    await self._relay_while_locked(lock_conn)
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay interrupted; retrying", exc_info=True)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _try_lock(self, conn: AsyncConnection) -> bool:
        result = await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": self._lock_key})
        await conn.commit()
        return bool(result.scalar())

    async def _relay_while_locked(self, lock_conn: AsyncConnection) -> None:
        publish_backoff = 0.1
        while not self._stopping.is_set():
            published, failed = await self.publish_batch()
            if failed:  # NATS refused or timed out; the rows wait and are retried
                await self._sleep(publish_backoff)
                publish_backoff = min(publish_backoff * 2, 5.0)
                continue
            publish_backoff = 0.1
            if published < self._batch_size:
                await self._sleep(self._idle_poll)
                # Keep the lock connection alive, and notice when Postgres went away.
                await lock_conn.execute(text("SELECT 1"))
                await lock_conn.commit()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def publish_batch(self) -> tuple[int, bool]:
        """Publish up to one batch; returns how many were published and whether a publish failed."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        self._outbox.c.position,
                        self._outbox.c.event_id,
                        self._outbox.c.subject,
                        self._outbox.c.payload,
                        self._outbox.c.headers,
                    )
                    .order_by(self._outbox.c.position)
                    .limit(self._batch_size)
                )
            ).all()
            await conn.commit()
            if not rows:
                OUTBOX_PENDING.labels(self._service).set(0)
                return 0, False
            done = await self._publish_rows(rows)
            if done:
                await conn.execute(delete(self._outbox).where(self._outbox.c.position.in_(done)))
                await conn.commit()
                OUTBOX_PUBLISHED.labels(self._service).inc(len(done))
            return len(done), len(done) < len(rows)

    def _publish_headers(self, row: Any) -> dict[str, str]:
        """Headers for one outbox row: its event id, and a publish span when a trace awaits it."""
        stored = row.headers if isinstance(row.headers, dict) else json.loads(row.headers)
        headers: dict[str, str] = {}
        if stored:
            # A PRODUCER span, child of the transaction that wrote the row, parent of the consumers.
            with tracer().start_as_current_span(
                f"{row.subject} publish", context=extract_context(stored), kind=trace.SpanKind.PRODUCER
            ) as span:
                span.set_attribute("messaging.system", "nats")
                span.set_attribute("messaging.destination.name", row.subject)
                span.set_attribute("grantline.event.id", str(row.event_id))
                inject_context(headers)
        # Rows written outside any trace (the vault's resolve audit records) get no span: on the
        # hot path a root span per event would cost more than the publish itself.
        headers["Nats-Msg-Id"] = str(row.event_id)
        return headers

    async def _publish_rows(self, rows: Sequence[Any]) -> list[int]:
        # Publishes are pipelined: each is written to the socket in order before any ack is awaited,
        # so JetStream stores them in order. On a failure we stop at the first unacknowledged row
        # (rows after it that did land are dropped as duplicates when they are published again).
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        failed = False
        for row in rows:
            try:
                future = await self._js.publish_async(
                    row.subject, row.payload, headers=self._publish_headers(row), wait_stall=PUBLISH_TIMEOUT
                )
            except Exception as error:
                self._publish_failed(error)
                failed = True
                break
            pending.append((row.position, future))
        done: list[int] = []
        for position, future in pending:
            if failed:
                future.cancel()  # releases the client's in-flight slot; the row is retried later
                continue
            try:
                await asyncio.wait_for(future, timeout=PUBLISH_TIMEOUT)
            except Exception as error:
                self._publish_failed(error)
                failed = True
                continue
            done.append(position)
        return done

    def _publish_failed(self, error: BaseException) -> None:
        OUTBOX_PUBLISH_FAILURES.labels(self._service).inc()
        log.warning("outbox publish failed; will retry", extra={"error": type(error).__name__})


__all__ = ["OutboxRelay", "add_event", "add_events", "event_headers", "outbox_row", "outbox_table"]
