"""The ledger's ingest loop: fetch a batch from the AUDIT stream, store it in one transaction, ack it.

Acknowledged only after the commit, so a crash or an outage redelivers; stored at most once, because
the record id (the event id) is checked under the chain head lock. Malformed messages are terminated
with a logged reason and never hold up the rest of the batch.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError

from grantline.audit.adapters.audit_stream import ConsumerOptions, ledger_subscription, num_delivered
from grantline.audit.domain.hash_chain import AuditEntry, canonical_bytes
from grantline.audit.service.ingest import append_entries, entry_from_record
from grantline.common.contract.audit import AuditRecord
from grantline.common.nats.consuming import retry_delay, validation_summary
from grantline.common.runtime import ServiceRuntime
from grantline.common.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.common.telemetry.tracing import tracer

log = logging.getLogger(__name__)

METRIC_SUBJECT = "audit.*.>"
# A batch failing this often is retried one record at a time, so one bad record cannot block the rest.
ISOLATE_AFTER_DELIVERIES = 4


@dataclass(frozen=True)
class Received:
    """A message that decoded into a ledger entry."""

    msg: Msg
    entry: AuditEntry


def decode(msg: Msg, received_at: datetime) -> AuditEntry | str:
    """The entry `msg` carries, or the reason it is not one (never a value from the message)."""
    # Postgres text and jsonb cannot hold NUL; such a record would fail every insert forever.
    if b"\\u0000" in msg.data:
        return "contains a NUL character"
    try:
        record = AuditRecord.model_validate_json(msg.data)
        entry = entry_from_record(record, received_at)
        canonical_bytes(entry.detail)
    except ValidationError as error:
        return validation_summary(error)
    except (TypeError, ValueError) as error:
        return f"detail cannot be hashed: {type(error).__name__}"
    return entry


class LedgerIngest:
    """Background task of the audit service: the AUDIT stream into the ledger."""

    def __init__(self, runtime: ServiceRuntime, *, batch_size: int, options: ConsumerOptions) -> None:
        self.runtime = runtime
        self.batch_size = batch_size
        self.options = options
        self.stored = 0
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def run(self) -> None:
        """Fetch and store batches until cancelled, riding out NATS and Postgres outages."""
        try:
            await self._fetch_forever()
        finally:
            # A subscription left behind holds the connection's drain at shutdown until it times out.
            await self._unsubscribe()

    async def _fetch_forever(self) -> None:
        failures = 0
        while True:
            try:
                if self._subscription is None:
                    self._subscription = await ledger_subscription(self.runtime.nats, self.options)
                messages = await self._subscription.fetch(self.batch_size, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                log.warning("audit stream fetch failed", extra={"error": type(error).__name__})
                if failures >= 3:
                    # The consumer may be gone (stream recreated): bind again from scratch.
                    await self._unsubscribe()
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            failures = 0
            await self.handle_batch(messages)

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Store the valid records of `messages` in one transaction, then acknowledge them."""
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        valid: list[Received] = []
        for msg in messages:
            decoded = decode(msg, received_at)
            if isinstance(decoded, str):
                await self._reject(msg, decoded)
            else:
                valid.append(Received(msg, decoded))
        if not valid:
            return
        with tracer().start_as_current_span("audit ingest", kind=trace.SpanKind.CONSUMER) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.batch.message_count", len(valid))
            if min(num_delivered(r.msg) for r in valid) >= ISOLATE_AFTER_DELIVERIES:
                await self._store_one_by_one(valid)
            else:
                await self._store(valid)
        MESSAGE_SECONDS.labels("audit", METRIC_SUBJECT).observe(time.perf_counter() - started)

    async def _store(self, batch: Sequence[Received]) -> bool:
        try:
            async with self.runtime.transaction() as session:
                result = await append_entries(session, [r.entry for r in batch])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._retry_later(batch, error)
            return False
        await asyncio.gather(*(r.msg.ack() for r in batch))
        self.stored += result.stored
        MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "ok").inc(result.stored)
        if result.duplicates:
            MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "duplicate").inc(result.duplicates)
        return True

    async def _store_one_by_one(self, batch: Sequence[Received]) -> None:
        for received in batch:
            try:
                async with self.runtime.transaction() as session:
                    result = await append_entries(session, [received.entry])
            except (DataError, IntegrityError) as error:
                # The database refuses this record itself (not an outage): it would block the stream forever.
                await self._reject(received.msg, f"refused by the database: {type(error).__name__}")
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._retry_later([received], error)
                return
            await received.msg.ack()
            self.stored += result.stored
            MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "ok").inc(result.stored)

    async def _retry_later(self, batch: Sequence[Received], error: Exception) -> None:
        attempt = max(num_delivered(r.msg) for r in batch)
        delay = retry_delay(attempt)
        log.warning(
            "audit batch not stored; it will be redelivered",
            extra={
                "error": type(error).__name__,
                "records": len(batch),
                "attempt": attempt,
                "retry_in_s": delay,
            },
        )
        MESSAGES_HANDLED.labels("audit", METRIC_SUBJECT, "retried").inc(len(batch))
        for received in batch:
            with contextlib.suppress(Exception):
                await received.msg.nak(delay=delay)
        # Give the database a moment before the next fetch, instead of spinning on an outage.
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
