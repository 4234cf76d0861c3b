"""Request/reply over core NATS: errors are replies (``{"error": {...}}``), never exceptions."""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.registry import encode_message
from grantline.common.nats.consuming import validation_summary
from grantline.common.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.common.telemetry.tracing import extract_context, inject_context, tracer

log = logging.getLogger(__name__)

RequestT = TypeVar("RequestT", bound=BaseModel)
ReplyT = TypeVar("ReplyT", bound=BaseModel)


class RequestFailed(Exception):
    """The service could not be reached or did not answer in time."""


def serve_requests(
    broker: NatsBroker,
    *,
    service: str,
    subject: str,
    request_model: type[RequestT],
    handler: Callable[[RequestT], Awaitable[BaseModel]],
    queue: str | None = None,
    max_workers: int = 1,
) -> Any:
    """Register a queue-group responder that validates requests and always replies."""

    async def on_request(msg: NatsMessage) -> bytes:
        raw = msg.raw_message
        started = time.perf_counter()
        with tracer().start_as_current_span(
            f"{subject} serve", context=extract_context(raw.headers), kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            try:
                request = request_model.model_validate_json(raw.data)
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
                    reply = ErrorReply.of(ErrorCode.INTERNAL, "internal error; see the service log")
                    outcome = "failed"
            if isinstance(reply, ErrorReply):
                span.set_attribute("grantline.error.code", reply.error.code.value)
        MESSAGES_HANDLED.labels(service, subject, outcome).inc()
        MESSAGE_SECONDS.labels(service, subject).observe(time.perf_counter() - started)
        return encode_message(reply)

    options: dict[str, Any] = {"queue": queue or f"{service}.{subject}"}
    if max_workers > 1:
        options["max_workers"] = max_workers
    return broker.subscriber(subject, **options)(on_request)


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
    data = response.data
    if data.startswith(b'{"error"'):
        return ErrorReply.model_validate_json(data)
    return reply_model.model_validate_json(data)
