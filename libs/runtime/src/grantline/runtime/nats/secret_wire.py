"""Requests that must carry a secret to the vault (codes, client secrets, API keys) on the wire.

The encoding is the contract's (``grantline.contract.wire.encode_with_secrets``); this adds the span
and the trace context. Only senders of ``vault.exchange``, ``vault.provider_apps.put``,
``vault.connections.api_key`` and ``vault.resolve`` (its run grant), and the vault's resolve reply,
should use this module.
"""

from typing import TypeVar

from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from opentelemetry import trace
from pydantic import BaseModel

from grantline.contract.errors import ErrorReply
from grantline.contract.wire import MASKED, RequestFailed, decode_reply, encode_with_secrets, is_masked
from grantline.runtime.telemetry.tracing import inject_context, tracer

__all__ = ["MASKED", "encode_with_secrets", "is_masked", "request_with_secrets"]

ReplyT = TypeVar("ReplyT", bound=BaseModel)


async def request_with_secrets(
    nc: Client, subject: str, message: BaseModel, reply_model: type[ReplyT], *, timeout: float = 5.0
) -> ReplyT | ErrorReply:
    """Like ``request_reply.request`` but sends the secrets the message holds."""
    headers: dict[str, str] = {}
    with tracer().start_as_current_span(f"{subject} request", kind=trace.SpanKind.CLIENT):
        inject_context(headers)
        try:
            response = await nc.request(
                subject, encode_with_secrets(message), timeout=timeout, headers=headers
            )
        except (TimeoutError, NoRespondersError) as error:
            raise RequestFailed(f"{subject}: {type(error).__name__}") from error
    return decode_reply(response.data, reply_model)
