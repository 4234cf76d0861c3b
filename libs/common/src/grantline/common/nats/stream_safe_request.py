"""Request/reply on a subject that a JetStream stream also captures (``audit.query`` in ``AUDIT``).

JetStream answers every message it stores on a subject with a publish acknowledgement sent to the
message's reply subject, so a plain ``nc.request`` receives ``{"stream": ..., "seq": ...}`` before the
service's real reply. ``request_past_stream_ack`` waits past such acknowledgements for the real reply.
"""

import json
import time
from typing import TypeVar

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from opentelemetry import trace
from pydantic import BaseModel

from grantline.common.contract.errors import ErrorReply
from grantline.common.contract.registry import encode_message
from grantline.common.nats.request_reply import RequestFailed
from grantline.common.telemetry.tracing import inject_context, tracer

ReplyT = TypeVar("ReplyT", bound=BaseModel)

_PUB_ACK_KEYS = frozenset({"stream", "seq", "duplicate", "domain"})


def is_stream_ack(data: bytes) -> bool:
    """True when `data` is a JetStream publish acknowledgement rather than a service reply."""
    if not data.startswith(b'{"stream"'):
        return False
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and {"stream", "seq"} <= body.keys() <= _PUB_ACK_KEYS


async def request_past_stream_ack(
    nc: Client,
    subject: str,
    message: BaseModel,
    reply_model: type[ReplyT],
    *,
    timeout: float = 5.0,
) -> ReplyT | ErrorReply:
    """Like ``request_reply.request``, but ignores JetStream's publish acknowledgement of the request."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    headers: dict[str, str] = {}
    try:
        with tracer().start_as_current_span(f"{subject} request", kind=trace.SpanKind.CLIENT):
            inject_context(headers)
            await nc.publish(subject, encode_message(message), reply=inbox, headers=headers)
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestFailed(f"{subject}: TimeoutError")
                try:
                    response = await subscription.next_msg(timeout=remaining)
                except (TimeoutError, NatsTimeoutError) as error:
                    raise RequestFailed(f"{subject}: TimeoutError") from error
                if not is_stream_ack(response.data):
                    break
    finally:
        await subscription.unsubscribe()
    data = response.data
    if data.startswith(b'{"error"'):
        return ErrorReply.model_validate_json(data)
    return reply_model.model_validate_json(data)
