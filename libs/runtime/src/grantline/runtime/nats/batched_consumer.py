"""Batched durable consumers: fetch what is waiting, handle it in one transaction, then acknowledge.

One transaction per message would cost more than applying a busy subject's events, so every
service consumes its durable consumers here: each loop fetches what is waiting (up to
``batch_size``, topping up for ``top_up_seconds`` after the first message), hands the decoded events to
the handler in one transaction, then acknowledges. If the batch fails, each event is retried in a
transaction of its own, so one poison event is negatively acknowledged (and redelivered with backoff)
without holding back the others. Handlers record events in their inbox, so a redelivery of something
already committed changes nothing. Replicas share the durable consumer, which `grantline migrate`
created (grantline.runtime.nats.consumers): a service binds to it and never creates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import ValidationError

from grantline.contract.envelope import Event
from grantline.runtime.nats.consumers import ConsumerSpec
from grantline.runtime.nats.consuming import misplaced, retry_delay, validation_summary
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.runtime.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.runtime.telemetry.tracing import extract_context, tracer

log = logging.getLogger(__name__)

# After the first message of a batch, how long to wait for more: short, so a lone event is barely
# delayed, yet long enough that at a few hundred events a second a batch holds tens of them (each
# batch costs a fixed few statements and a commit, whatever its size).
DEFAULT_TOP_UP_SECONDS = 0.02

# A handler gets what the unit of work yields: a SQLAlchemy session (``runtime.transaction``, the
# default) or a psycopg connection (a hot consumer passes ``runtime.driver_transaction``).
BatchHandler = Callable[[Any, list["Received"]], Awaitable[None]]
UnitOfWork = Callable[[], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class Received:
    """A decoded event with the headers it arrived with (for its trace)."""

    event: Event
    headers: dict[str, str] | None

    @contextlib.contextmanager
    def traced(self, durable: str) -> Iterator[None]:
        """A CONSUMER span around the event's handling when it arrived inside a trace, else nothing.

        Outbox rows written inside the span carry its context, so the trace goes on to the answer.
        """
        if not self.headers or "traceparent" not in self.headers:
            yield
            return
        subject = self.event.subject()
        with tracer().start_as_current_span(
            f"{subject} process", context=extract_context(self.headers), kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            span.set_attribute("messaging.consumer.group.name", durable)
            span.set_attribute("grantline.event.id", str(self.event.id))
            yield


class BatchedConsumer:
    """Background loops that fetch, handle and acknowledge batches of one durable consumer."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        consumer: ConsumerSpec,
        decode: Callable[[bytes], Event],
        handle: Callable[[Any, list[Received]], Awaitable[None]],
        loops: int,
        batch_size: int,
        top_up_seconds: float = DEFAULT_TOP_UP_SECONDS,
        unit_of_work: UnitOfWork | None = None,
    ) -> None:
        self._runtime = runtime
        self.consumer = consumer
        self.durable = consumer.durable
        subject = consumer.filter_subject
        runtime.bind_consumer(consumer)
        self._decode = decode
        self._handle = handle
        self._loops = loops
        self._batch_size = batch_size
        self._top_up_seconds = top_up_seconds
        self._unit_of_work: UnitOfWork = unit_of_work or runtime.transaction
        self._handled = {
            outcome: MESSAGES_HANDLED.labels(runtime.name, subject, outcome)
            for outcome in ("ok", "rejected", "retried")
        }
        self._seconds = MESSAGE_SECONDS.labels(runtime.name, subject)
        self._subscription: object | None = None

    async def subscribe(self) -> None:
        """Bind to the durable consumer (the runtime has waited for it to exist)."""
        js = self._runtime.nats.jetstream()
        self._subscription = await js.pull_subscribe_bind(self.durable, stream=self.consumer.stream.name)

    async def run(self) -> None:
        """Run the fetch loops until cancelled."""
        if self._subscription is None:
            await self.subscribe()
        subscription = self._subscription
        try:
            await asyncio.gather(*(self._loop(subscription) for _ in range(self._loops)))
        finally:
            self._subscription = None
            await subscription.unsubscribe()  # type: ignore[union-attr]

    async def _loop(self, subscription: object) -> None:
        fetch = subscription.fetch  # type: ignore[attr-defined]
        while True:
            try:
                messages: list[Msg] = await fetch(1, timeout=1.0)
            except TimeoutError:
                continue
            if self._batch_size > 1:
                with contextlib.suppress(TimeoutError):
                    messages += await fetch(self._batch_size - 1, timeout=self._top_up_seconds)
            await self.handle_messages(messages)

    async def handle_messages(self, messages: list[Msg]) -> None:
        """Decode, handle in one transaction and acknowledge ``messages`` (one by one if that fails)."""
        started = time.perf_counter()
        batch: list[tuple[Msg, Received]] = []
        for msg in messages:
            try:
                event = self._decode(msg.data)
                reason = misplaced(event, msg.subject)
            except ValidationError as error:
                reason = validation_summary(error)
            if reason is not None:
                log.warning(
                    "rejected malformed message",
                    extra={"subject": msg.subject, "consumer": self.durable, "reason": reason},
                )
                await msg.term()
                self._handled["rejected"].inc()
                continue
            batch.append((msg, Received(event, msg.headers)))
        if not batch:
            return
        try:
            async with self._unit_of_work() as work:
                await self._handle(work, [received for _, received in batch])
        except Exception:
            log.warning(
                "batch failed; handling its events one by one",
                extra={"consumer": self.durable, "size": len(batch)},
                exc_info=True,
            )
            await self._one_by_one(batch)
        else:
            for msg, _ in batch:
                await msg.ack()
            self._handled["ok"].inc(len(batch))
        self._seconds.observe(time.perf_counter() - started)

    async def _one_by_one(self, batch: list[tuple[Msg, Received]]) -> None:
        for msg, received in batch:
            try:
                async with self._unit_of_work() as work:
                    await self._handle(work, [received])
            except Exception:
                delay = retry_delay(msg.metadata.num_delivered)
                log.exception(
                    "handler failed; message will be redelivered",
                    extra={
                        "subject": msg.subject,
                        "consumer": self.durable,
                        "event_id": str(received.event.id),
                        "retry_in_s": delay,
                    },
                )
                await msg.nak(delay=delay)
                self._handled["retried"].inc()
            else:
                await msg.ack()
                self._handled["ok"].inc()
