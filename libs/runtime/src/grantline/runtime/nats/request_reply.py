"""Request/reply over core NATS: errors are replies (``{"error": {...}}``), never exceptions."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError, TimeoutError
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.wire import RequestFailed as RequestFailed  # raised here, defined in the contract
from grantline.contract.wire import decode_reply
from grantline.runtime.nats.consuming import validation_summary
from grantline.runtime.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.runtime.telemetry.tracing import extract_context, inject_context, tracer

log = logging.getLogger(__name__)

RequestT = TypeVar("RequestT", bound=BaseModel)
ReplyT = TypeVar("ReplyT", bound=BaseModel)


# Request bytes, headers and the subject it came on (a tenant-scoped subject names the tenant) to
# reply bytes and an outcome label for the metrics.
Answer = Callable[[bytes, Mapping[str, str] | None, str], Awaitable[tuple[bytes, str]]]
OUTCOMES = ("ok", "error_reply", "rejected", "failed")
_INTERNAL = encode_message(ErrorReply.of(ErrorCode.INTERNAL, "internal error; see the service log"))


class RequestSubscription:
    """A queue-group responder on a nats-py subscription, shared by the service's replicas.

    A reply for every request (``internal`` when ``answer`` raises) and the metrics; ``answer`` does
    the validation on the raw bytes (see ``answering``: a hostile body, a deeply nested one say, gets
    an error reply, never silence) and, when it wants one, the span. Each request gets its own task,
    so requests can meet in shared batches; with ``max_in_flight``, the rest wait in the
    subscription's queue (1 answers one request at a time, in order).
    """

    def __init__(
        self,
        *,
        service: str,
        subject: str,
        answer: Answer,
        max_in_flight: int | None = None,
        queue: str | None = None,
    ) -> None:
        self._subject = subject
        self._queue = queue or f"{service}.{subject}"
        self._answer = answer
        self._metrics = _RequestMetrics(service, subject)
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight is not None else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._nc: Client | None = None
        self._subscription: Subscription | None = None

    async def start(self, nc: Client) -> None:
        """Subscribe in the queue group."""
        self._nc = nc
        self._subscription = await nc.subscribe(
            self._subject, queue=self._queue, cb=self._on_message, pending_msgs_limit=1_000_000
        )

    async def stop(self) -> None:
        """Stop taking requests and answer those in hand."""
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:  # the connection may already be closed
                log.debug("unsubscribe failed", exc_info=True, extra={"subject": self._subject})
            self._subscription = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_message(self, msg: Msg) -> None:
        if self._slots is not None:
            # nats-py awaits this callback before delivering the subscription's next message, so
            # waiting for a slot here holds the rest in the subscription's queue.
            await self._slots.acquire()
        task = asyncio.ensure_future(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _serve(self, msg: Msg) -> None:
        started = time.perf_counter()
        try:
            reply, outcome = await self._answer(msg.data, msg.headers, msg.subject)
        except Exception:
            log.exception("request handler failed", extra={"subject": self._subject})
            reply, outcome = _INTERNAL, "failed"
        if msg.reply and self._nc is not None:
            try:
                await self._nc.publish(msg.reply, reply)
            except Exception as error:
                log.warning("reply not sent", extra={"subject": self._subject, "error": type(error).__name__})
        self._metrics.observe(outcome, started)


def answering(
    subject: str,
    request_model: type[RequestT],
    handler: Callable[[RequestT], Awaitable[BaseModel]],
    *,
    encode: Callable[[BaseModel], bytes] = encode_message,
) -> Answer:
    """An ``Answer`` that validates into ``request_model``, calls ``handler`` in a span, and turns
    every failure into an error reply. ``encode`` writes the reply (default: secrets masked)."""

    async def answer(data: bytes, headers: Mapping[str, str] | None, _subject: str) -> tuple[bytes, str]:
        with tracer().start_as_current_span(
            f"{subject} serve", context=extract_context(headers), kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            try:
                request = request_model.model_validate_json(data)
            except ValidationError as error:
                reply: BaseModel = ErrorReply.of(
                    ErrorCode.INVALID_REQUEST, f"invalid request: {validation_summary(error)}"
                )
                outcome = "rejected"
            else:
                try:
                    reply = await handler(request)
                    outcome = "error_reply" if isinstance(reply, ErrorReply) else "ok"
                except Exception as error:
                    log.exception("request handler failed", extra={"subject": subject})
                    span.record_exception(error)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
                    span.set_attribute("grantline.error.code", ErrorCode.INTERNAL.value)
                    return _INTERNAL, "failed"
            if isinstance(reply, ErrorReply):
                span.set_attribute("grantline.error.code", reply.error.code.value)
        return encode(reply), outcome

    return answer


def serving(
    service: str,
    subject: str,
    request_model: type[RequestT],
    handler: Callable[[RequestT], Awaitable[BaseModel]],
    *,
    encode: Callable[[BaseModel], bytes] = encode_message,
    max_in_flight: int | None = None,
) -> RequestSubscription:
    """``service``'s responder on ``subject``: a ``RequestSubscription`` that answers with ``answering``."""
    return RequestSubscription(
        service=service,
        subject=subject,
        answer=answering(subject, request_model, handler, encode=encode),
        max_in_flight=max_in_flight,
    )


class _RequestMetrics:
    """Requests handled by outcome and their handling time, labels bound once."""

    def __init__(self, service: str, subject: str) -> None:
        self._handled = {outcome: MESSAGES_HANDLED.labels(service, subject, outcome) for outcome in OUTCOMES}
        self._seconds = MESSAGE_SECONDS.labels(service, subject)

    def observe(self, outcome: str, started: float) -> None:
        self._handled[outcome].inc()
        self._seconds.observe(time.perf_counter() - started)


async def request(
    nc: Client,
    subject: str,
    message: BaseModel,
    reply_model: type[ReplyT],
    *,
    timeout: float = 5.0,
) -> ReplyT | ErrorReply:
    """Send a request and parse the reply, which is either ``reply_model`` or an ``ErrorReply``."""
    headers: dict[str, str] = {}
    with tracer().start_as_current_span(f"{subject} request", kind=trace.SpanKind.CLIENT):
        inject_context(headers)
        try:
            response = await nc.request(subject, encode_message(message), timeout=timeout, headers=headers)
        except (TimeoutError, NoRespondersError) as error:
            raise RequestFailed(f"{subject}: {type(error).__name__}") from error
    return decode_reply(response.data, reply_model)
