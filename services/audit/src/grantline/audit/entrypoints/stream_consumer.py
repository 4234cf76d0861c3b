"""The ledger's ingest loop: pull batches from the AUDIT stream, store each in one transaction, ack it.

Two stages run at once: receiving (pull, decode, reject malformed) and storing (lock heads, chain,
COPY, commit, ack), so the next batch is decoded while Postgres commits the current one. Acknowledged
only after the commit, so a crash or an outage redelivers; stored at most once, because the record id
(the event id) is checked under the chain head lock. Malformed messages are terminated with a logged
reason and never hold up the rest of the batch.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from nats.aio.msg import Msg
from opentelemetry import trace

from grantline.audit.adapters.audit_stream import (
    ConsumerMissing,
    ConsumerOptions,
    LedgerPuller,
    num_delivered,
)
from grantline.audit.domain.prepared_entry import PreparedEntry, canonical_datetime
from grantline.audit.entrypoints.record_decoding import decode_record
from grantline.audit.service.ingest import append_entries
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.consuming import retry_delay
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.runtime.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.runtime.telemetry.tracing import tracer

log = logging.getLogger(__name__)

METRIC_SUBJECT = "audit.*.>"
# A batch failing this often is retried one record at a time, so one bad record cannot block the rest.
ISOLATE_AFTER_DELIVERIES = 4
# Decoded batches waiting for the store stage: enough to overlap decoding with a commit, no more.
PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class Received:
    """A message that decoded into a ledger entry."""

    msg: Msg
    entry: PreparedEntry


class LedgerIngest:
    """Background task of the audit service: the AUDIT stream into the ledger."""

    def __init__(self, runtime: ServiceRuntime, *, batch_size: int, options: ConsumerOptions) -> None:
        self.runtime = runtime
        self.batch_size = batch_size
        self.options = options
        self.stored = 0

    async def run(self) -> None:
        """Receive and store batches until cancelled, riding out NATS and Postgres outages."""
        failures = 0
        while True:
            puller = LedgerPuller(self.runtime.nats, self.options, batch_size=self.batch_size)
            try:
                await puller.start()
                failures = 0
                queue: asyncio.Queue[list[Received] | None] = asyncio.Queue(PIPELINE_DEPTH)
                # If either stage fails, the other is cancelled; unacknowledged records are redelivered.
                async with asyncio.TaskGroup() as stages:
                    stages.create_task(self._receive(puller, queue))
                    stages.create_task(self._store_batches(queue))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                if isinstance(error, ConsumerMissing):
                    log.error("audit stream consumer missing", extra={"detail": str(error)})
                else:
                    log.warning("audit stream consumer failed", extra={"error": type(error).__name__})
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
            finally:
                # A subscription left behind holds the connection's drain at shutdown until it times out.
                await puller.stop()

    async def _receive(self, puller: LedgerPuller, queue: "asyncio.Queue[list[Received] | None]") -> None:
        while not puller.needs_rebind:
            messages = await puller.take(timeout=1.0)
            if messages:
                valid = await self._decode_batch(messages)
                if valid:
                    await queue.put(valid)
        # The consumer may be gone (stream recreated): bind again from scratch, once stored what we hold.
        log.warning("audit stream pulls unanswered; binding the consumer again")
        await queue.put(None)

    async def _store_batches(self, queue: "asyncio.Queue[list[Received] | None]") -> None:
        while (batch := await queue.get()) is not None:
            if not await self.store_batch(batch):
                # Those behind a failed batch are redelivered after it, keeping each tenant's order.
                while not queue.empty() and (waiting := queue.get_nowait()) is not None:
                    await self._retry_later(waiting, None)

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Store the valid records of `messages` in one transaction, then acknowledge them."""
        valid = await self._decode_batch(messages)
        if valid:
            await self.store_batch(valid)

    async def _decode_batch(self, messages: Sequence[Msg]) -> list[Received]:
        received_at = datetime.now(UTC)
        received_text = canonical_datetime(received_at)
        valid: list[Received] = []
        for msg in messages:
            decoded = decode_record(msg.data, received_at, received_text)
            if isinstance(decoded, str):
                await self._reject(msg, decoded)
            else:
                valid.append(Received(msg, decoded))
        return valid

    async def store_batch(self, batch: Sequence[Received]) -> bool:
        """Store `batch` (one at a time if it keeps failing) and acknowledge it; False if it must wait."""
        started = time.perf_counter()
        with tracer().start_as_current_span("audit ingest", kind=trace.SpanKind.CONSUMER) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.batch.message_count", len(batch))
            if self._keeps_failing(batch):
                stored = await self._store_one_by_one(batch)
            else:
                stored = await self._store(batch)
        MESSAGE_SECONDS.labels("audit", METRIC_SUBJECT).observe(time.perf_counter() - started)
        return stored

    @staticmethod
    def _keeps_failing(batch: Sequence[Received]) -> bool:
        # Most batches are first deliveries: one reply parsed settles it.
        if num_delivered(batch[0].msg) == 1:
            return False
        return min(num_delivered(r.msg) for r in batch) >= ISOLATE_AFTER_DELIVERIES

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[DriverConnection]:
        # Not runtime.driver_transaction(): its connection is in pipeline mode, where psycopg cannot
        # COPY. An explicit transaction (BEGIN ... COMMIT, rolled back if the block raises) on an
        # autocommit connection instead. And no wake of the outbox relay after the commit: that would
        # make it poll an outbox this service never writes to (a query per batch, a noticeable share).
        async with self.runtime.single_statement(wake_relay=False) as conn, conn.transaction():
            yield conn

    async def _store(self, batch: Sequence[Received]) -> bool:
        try:
            async with self._transaction() as conn:
                result = await append_entries(conn, [r.entry for r in batch])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._retry_later(batch, error)
            return False
        # One after the other: gathering would make a task per ack, which costs more than the ack.
        for received in batch:
            await received.msg.ack()
        self.stored += result.stored
        MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "ok").inc(result.stored)
        if result.duplicates:
            MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "duplicate").inc(result.duplicates)
        return True

    async def _store_one_by_one(self, batch: Sequence[Received]) -> bool:
        for received in batch:
            try:
                async with self._transaction() as conn:
                    result = await append_entries(conn, [received.entry])
            except (psycopg.DataError, psycopg.IntegrityError) as error:
                # The database refuses this record itself (not an outage): it would block the stream forever.
                await self._reject(received.msg, f"refused by the database: {type(error).__name__}")
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._retry_later([received], error)
                return False
            await received.msg.ack()
            self.stored += result.stored
            MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "ok").inc(result.stored)
        return True

    async def _retry_later(self, batch: Sequence[Received], error: Exception | None) -> None:
        attempt = max(num_delivered(r.msg) for r in batch)
        delay = retry_delay(attempt)
        log.warning(
            "audit batch not stored; it will be redelivered",
            extra={
                "error": type(error).__name__ if error is not None else "behind a failed batch",
                "records": len(batch),
                "attempt": attempt,
                "retry_in_s": delay,
            },
        )
        MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "retried").inc(len(batch))
        for received in batch:
            with contextlib.suppress(Exception):
                await received.msg.nak(delay=delay)
        if error is not None:
            # Give the database a moment before the next batch, instead of spinning on an outage.
            await asyncio.sleep(min(delay, 2.0))

    async def _reject(self, msg: Msg, reason: str) -> None:
        stream_seq = None
        with contextlib.suppress(Exception):
            stream_seq = msg.metadata.sequence.stream
        log.warning(
            "rejected malformed audit message",
            extra={"subject": msg.subject, "reason": reason, "stream_seq": stream_seq},
        )
        MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "rejected").inc()
        with contextlib.suppress(Exception):
            await msg.term()
