"""Requests that must carry a secret to the vault (codes, client secrets, API keys) on the wire.

``encode_message`` dumps ``SecretStr`` fields masked (``"**********"``), which is right for events,
logs and every reply but ``vault.resolve``'s; a request whose purpose is to hand the vault a secret
must send the value itself. Only senders of ``vault.exchange``, ``vault.provider_apps.put``,
``vault.connections.api_key`` and ``vault.resolve`` (its run grant), and the vault's resolve reply,
should use this module.
"""

from typing import Any, TypeVar

import pydantic_core
from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from opentelemetry import trace
from pydantic import BaseModel, SecretBytes, SecretStr

from grantline.common.contract.errors import ErrorReply
from grantline.common.nats.request_reply import RequestFailed
from grantline.common.telemetry.tracing import inject_context, tracer

ReplyT = TypeVar("ReplyT", bound=BaseModel)
MASKED = "**********"


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode()
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(item) for item in value]
    return value


def encode_with_secrets(message: BaseModel) -> bytes:
    """The JSON bytes of a message with its ``SecretStr`` fields revealed (only for the vault)."""
    return pydantic_core.to_json(_reveal(message.model_dump()))


def is_masked(value: SecretStr | None) -> bool:
    """True when a secret arrived as pydantic's mask: the sender used ``encode_message`` by mistake."""
    return value is not None and value.get_secret_value() == MASKED


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
    data = response.data
    if data.startswith(b'{"error"'):
        return ErrorReply.model_validate_json(data)
    return reply_model.model_validate_json(data)
