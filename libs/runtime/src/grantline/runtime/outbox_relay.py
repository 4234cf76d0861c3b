"""The outbox without SQLAlchemy: the row an event becomes, writing rows on a psycopg connection, and
the relay that publishes them to JetStream.

A service that runs on psycopg alone (``runtime.driver_transaction`` / ``single_statement``) uses
this module and never loads SQLAlchemy; ``grantline.runtime.outbox`` adds the table declaration for
migrations and the SQLAlchemy session helpers. ``OutboxRelay`` publishes waiting rows in insertion
order, with the event id as ``Nats-Msg-Id`` (a row published twice after a crash is dropped by
JetStream), and deletes them once JetStream has acknowledged them. While NATS is down, rows wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nats.aio.client import Client
from opentelemetry import trace
from psycopg import sql
from psycopg.rows import namedtuple_row

from grantline.contract.envelope import Event
from grantline.contract.registry import encode_message
from grantline.runtime.db import driver
from grantline.runtime.telemetry.metrics import OUTBOX_PENDING, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from grantline.runtime.telemetry.tracing import extract_context, inject_context, tracer

log = logging.getLogger(__name__)

# How long the relay waits for JetStream to acknowledge one publish before it retries the batch.
PUBLISH_TIMEOUT = 5.0


class OutboxLocation(Protocol):
    """Where a service's outbox table is: a SQLAlchemy ``Table`` is one, so is ``OutboxTable``."""

    @property
    def schema(self) -> str | None: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class OutboxTable:
    """A service's outbox named without SQLAlchemy (``<schema>.outbox``)."""

    schema: str
    name: str = "outbox"


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


def event_parameters(events: Sequence[Event]) -> dict[str, list[Any]]:
    """``events`` as the four arrays of an ``unnest`` insert into an outbox, in order: ``event_ids``,
    ``subjects``, ``payloads``, ``headers`` (for a statement that writes them with its own change)."""
    rows = [outbox_row(event) for event in events]
    return {
        "event_ids": [row["event_id"] for row in rows],
        "subjects": [row["subject"] for row in rows],
        "payloads": [row["payload"] for row in rows],
        "headers": [json.dumps(row["headers"]) for row in rows],
    }


async def write_events(
    conn: driver.DriverConnection, outbox: OutboxLocation, events: Sequence[Event]
) -> None:
    """Write ``events`` to the outbox in ``conn``'s transaction, in order, in one statement."""
    if not events:
        return
    statement = sql.SQL(
        "INSERT INTO {} (event_id, subject, payload, headers) SELECT * FROM unnest("
        "%(event_ids)s::uuid[], %(subjects)s::text[], %(payloads)s::bytea[], %(headers)s::jsonb[])"
    ).format(_identifier(outbox))
    await conn.execute(statement, event_parameters(events))


def _identifier(outbox: OutboxLocation) -> sql.Identifier:
    return sql.Identifier(*([outbox.schema] if outbox.schema else []), outbox.name)


class OutboxRelay:
    """Publishes a service's outbox to JetStream, one relay active per schema at a time.

    The active relay holds a Postgres advisory lock on its own connection, so replicas stand by
    and take over when it dies; ordering is preserved because only one relay publishes.
    """

    def __init__(
        self,
        *,
        service: str,
        database_url: str,
        outbox: OutboxLocation,
        nats: Client,
        batch_size: int = 200,
        idle_poll_seconds: float = 0.25,
    ) -> None:
        self._service = service
        self._database_url = database_url
        self._outbox = outbox
        self._nats = nats
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_key = f"outbox:{outbox.schema}"
        # One JetStream context for the relay's life: it holds the async-publish reply inbox.
        self._js = nats.jetstream(publish_async_max_pending=4 * batch_size)
        table = _identifier(outbox)
        self._read_batch = sql.SQL(
            "SELECT position, event_id, subject, payload, headers FROM {} ORDER BY position LIMIT %s"
        ).format(table)
        self._delete_published = sql.SQL("DELETE FROM {} WHERE position = ANY(%s)").format(table)

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
                # Its own connection in autocommit: the read and the delete are a statement each,
                # so a batch costs two round trips, with no BEGIN or COMMIT around them.
                async with await driver.connect(
                    self._database_url, application_name=f"{self._service}-outbox", autocommit=True
                ) as conn:
                    conn.row_factory = namedtuple_row
                    if not await self._try_lock(conn):
                        await self._sleep(1.0)
                        continue
                    log.info("outbox relay active", extra={"schema": self._outbox.schema})
                    await self._relay_while_locked(conn)
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay interrupted; retrying", exc_info=True)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _try_lock(self, conn: driver.DriverConnection) -> bool:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", [self._lock_key])
        row = await cursor.fetchone()
        return bool(row and row.locked)

    async def _relay_while_locked(self, conn: driver.DriverConnection) -> None:
        # Batches are read and deleted on the connection that holds the lock: if Postgres drops it
        # (and with it the lock), the next batch fails and the relay competes for the lock again
        # instead of publishing beside a replica that took over. The idle poll keeps it alive.
        publish_backoff = 0.1
        while not self._stopping.is_set():
            published, failed = await self._publish_batch(conn)
            if failed:  # NATS refused or timed out; the rows wait and are retried
                await self._sleep(publish_backoff)
                publish_backoff = min(publish_backoff * 2, 5.0)
                continue
            publish_backoff = 0.1
            if published < self._batch_size:
                await self._sleep(self._idle_poll)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _publish_batch(self, conn: driver.DriverConnection) -> tuple[int, bool]:
        """Publish up to one batch; returns how many were published and whether a publish failed."""
        rows = await (await conn.execute(self._read_batch, [self._batch_size], prepare=True)).fetchall()
        if not rows:
            OUTBOX_PENDING.labels(self._service).set(0)
            return 0, False
        done = await self._publish_rows(rows)
        if done:
            await conn.execute(self._delete_published, [done], prepare=True)
            OUTBOX_PUBLISHED.labels(self._service).inc(len(done))
        return len(done), len(done) < len(rows)

    def _publish_headers(self, row: Any) -> dict[str, str]:
        """Headers for one outbox row: its event id, and a publish span when a trace awaits it."""
        stored: dict[str, str] = row.headers  # jsonb: psycopg hands it over as a dict
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
        # No wait_stall: the client's in-flight limit is four batches and a batch is settled before
        # the next starts, so the slot is always free; with a timeout, nats-py wraps the slot in
        # asyncio.wait_for, which yields to the event loop per row and turns a batch into one socket
        # write (and one NATS wake-up) per event instead of one for the batch.
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        failed = False
        for row in rows:
            try:
                headers = self._publish_headers(row)
                future = await self._js.publish_async(row.subject, row.payload, headers=headers)
            except Exception as error:
                self._publish_failed(error)
                failed = True
                break
            pending.append((row.position, future))
        if pending:
            # One timer for the batch rather than a wait_for task per acknowledgement.
            await asyncio.wait([future for _, future in pending], timeout=PUBLISH_TIMEOUT)
        done: list[int] = []
        for position, future in pending:
            if not failed:
                refused = _publish_error(future)
                if refused is None:
                    done.append(position)
                    continue
                self._publish_failed(refused)
                failed = True
            future.cancel()  # releases the client's in-flight slot; the row is retried later
        return done

    def _publish_failed(self, error: BaseException) -> None:
        OUTBOX_PUBLISH_FAILURES.labels(self._service).inc()
        log.warning("outbox publish failed; will retry", extra={"error": type(error).__name__})


def _publish_error(future: asyncio.Future[Any]) -> BaseException | None:
    """Why a publish was not acknowledged, or None when JetStream stored it."""
    if not future.done() or future.cancelled():
        return TimeoutError("JetStream did not acknowledge the publish in time")
    return future.exception()
