"""How messages travel on the bus, beyond their models: header names, replies, secrets a request carries.

Shared by the services (``grantline.runtime``) and the runner SDK (``grantline.runner``), so that both
ends agree on the wire without the SDK installing the service stack.

- Every event is published with its id as ``Nats-Msg-Id`` (JetStream drops a duplicate), its type and
  its tenant in headers.
- A reply is either the expected model or ``{"error": {...}}`` (``ErrorReply``); ``decode_reply`` tells
  them apart.
- ``encode_message`` dumps ``SecretStr`` fields masked (``"**********"``), which is right for events,
  logs and every reply but ``vault.resolve``'s; a request whose purpose is to hand the vault a secret
  must send the value itself (``encode_with_secrets``). Only senders of ``vault.exchange``,
  ``vault.provider_apps.put``, ``vault.connections.api_key``, ``vault.resolve`` and
  ``satisfaction.renew_grant`` (their run grant), and the replies that hand out a secret, use it.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, SecretBytes, SecretStr

from grantline.contract.envelope import Event
from grantline.contract.errors import ErrorReply

MSG_ID = "Nats-Msg-Id"
EVENT_TYPE = "Grantline-Type"
TENANT = "Grantline-Tenant"
MASKED = "**********"

ReplyT = TypeVar("ReplyT", bound=BaseModel)


class RequestFailed(Exception):
    """The service could not be reached or did not answer in time."""


def event_headers(event: Event) -> dict[str, str]:
    """Headers for publishing ``event``: its id as ``Nats-Msg-Id`` so JetStream drops duplicates."""
    return {MSG_ID: str(event.id), EVENT_TYPE: event.type, TENANT: event.tenant_id}


def decode_reply(data: bytes, reply_model: type[ReplyT]) -> ReplyT | ErrorReply:
    """A reply's bytes as ``reply_model``, or as the ``ErrorReply`` the service sent instead."""
    if data.startswith(b'{"error"'):
        return ErrorReply.model_validate_json(data)
    return reply_model.model_validate_json(data)


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
