"""Durable JetStream consumers with explicit acknowledgement.

A handler is acknowledged after it returns (and so after its own commit). A message that is not a
valid event is terminated with a logged reason, so it never blocks the consumer. A handler that fails
is negatively acknowledged with a growing delay and retried: a database restart loses nothing.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from opentelemetry import trace
from pydantic import ValidationError

from grantline.contract.envelope import Event
from grantline.contract.registry import decode_event
from grantline.runtime.nats.consumers import ConsumerSpec
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.runtime.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.runtime.telemetry.tracing import extract_context, tracer

log = logging.getLogger(__name__)

EventHandler = Callable[[Event, "Delivery"], Awaitable[None]]

MAX_RETRY_DELAY_SECONDS = 30.0


@dataclass(frozen=True)
class Delivery:
    """What a handler may want to know about the message it is handling."""

    subject: str
    stream_sequence: int
    num_delivered: int


def validation_summary(error: ValidationError) -> str:
    """A reason for rejecting a message that names fields, never their (possibly secret) values."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['type']}" for e in error.errors()[:5]]
    return "; ".join(parts)


def misplaced(event: Event, subject: str) -> str | None:
    """Why ``event`` may not be taken from ``subject`` (None when it may).

    An event's subject follows from its type (and, for tenant-scoped events, its tenant), so one that
    arrives elsewhere was published by someone its subject's permissions did not cover for that
    content: a runner of tenant A writing tenant B's id into a ``runs.requested.A`` body, say.
    """
    expected = event.subject()
    if expected == subject:
        return None
    return f"an event for {expected} arrived on {subject}"


def retry_delay(num_delivered: int) -> float:
    """Exponential backoff for redelivery of a failed message, capped."""
    return min(MAX_RETRY_DELAY_SECONDS, 0.1 * (2 ** min(num_delivered, 10)))


async def handle_event_message(msg: NatsMessage, *, service: str, durable: str, handler: EventHandler) -> str:
    """Decode, trace, dispatch and acknowledge one message; returns the outcome label."""
    raw = msg.raw_message
    meta = raw.metadata
    subject = raw.subject
    started = time.perf_counter()
    parent = extract_context(raw.headers)
    with tracer().start_as_current_span(
        f"{subject} process", context=parent, kind=trace.SpanKind.CONSUMER
    ) as span:
        span.set_attribute("messaging.system", "nats")
        span.set_attribute("messaging.destination.name", subject)
        span.set_attribute("messaging.consumer.group.name", durable)
        try:
            event = decode_event(raw.data)
            reason = misplaced(event, subject)
        except ValidationError as error:
            reason = validation_summary(error)
        if reason is not None:
            log.warning(
                "rejected malformed message",
                extra={
                    "subject": subject,
                    "consumer": durable,
                    "reason": reason,
                    "stream_seq": meta.sequence.stream,
                },
            )
            span.set_attribute("grantline.rejected", reason)
            await raw.term()
            outcome = "rejected"
        else:
            span.set_attribute("grantline.event.id", str(event.id))
            span.set_attribute("grantline.tenant_id", event.tenant_id)
            delivery = Delivery(subject, meta.sequence.stream, meta.num_delivered)
            try:
                await handler(event, delivery)
            except Exception as error:
                delay = retry_delay(meta.num_delivered)
                log.exception(
                    "handler failed; message will be redelivered",
                    extra={
                        "subject": subject,
                        "consumer": durable,
                        "event_id": str(event.id),
                        "attempt": meta.num_delivered,
                        "retry_in_s": delay,
                    },
                )
                span.record_exception(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
                await raw.nak(delay=delay)
                outcome = "retried"
            else:
                await raw.ack()
                outcome = "ok"
    MESSAGES_HANDLED.labels(service, subject, outcome).inc()
    MESSAGE_SECONDS.labels(service, subject).observe(time.perf_counter() - started)
    return outcome


def _pull_inbox_prefix(broker: NatsBroker) -> bytes:
    """The connection's reply inbox prefix, for pull requests (FastStream would use ``_INBOX.``).

    With per-service NATS users a service may only subscribe to its own inboxes
    (``deploy/nats/permissions.yaml``), so its pull subscriptions must use that prefix too.
    """
    prefix = getattr(broker, "_connection_kwargs", {}).get("inbox_prefix") or "_INBOX"
    prefix = prefix.decode() if isinstance(prefix, bytes) else str(prefix)
    return (prefix.rstrip(".") + ".").encode()


def subscribe_events(
    runtime: ServiceRuntime,
    *,
    consumer: ConsumerSpec,
    handler: EventHandler,
    batch_size: int = 50,
    max_workers: int = 1,
) -> Any:
    """Bind a FastStream subscriber to the durable pull ``consumer`` and feed decoded events to ``handler``.

    The consumer is `grantline migrate`'s to create: the runtime waits until it exists before the
    broker starts, so the subscriber only looks it up and binds. ``max_workers`` > 1 handles messages
    concurrently; keep 1 where per-entity order matters more than throughput (handlers must still
    tolerate reordering, because redeliveries reorder).
    """
    runtime.bind_consumer(consumer)
    durable = consumer.durable

    async def on_message(msg: NatsMessage) -> None:
        await handle_event_message(msg, service=runtime.name, durable=durable, handler=handler)

    options: dict[str, Any] = {"inbox_prefix": _pull_inbox_prefix(runtime.broker)}
    if max_workers > 1:
        options["max_workers"] = max_workers
    return runtime.broker.subscriber(
        consumer.filter_subject,
        stream=JStream(consumer.stream.name, declare=False),
        durable=durable,
        # The declared configuration, in case the lookup races a `grantline migrate`: the service's
        # NATS user may not create consumers, so a missing one fails here instead of being created.
        config=consumer.config(),
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        **options,
    )(on_message)
