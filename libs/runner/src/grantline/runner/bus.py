"""The few NATS calls the runner SDK makes: publish an event to JetStream, send a request (again while
no service answers).

The wire rules (headers, error replies, secrets a request carries) are the contract's
(``grantline.contract.wire``); this adds only the calls and, when OpenTelemetry is installed in the
runner's process, the W3C trace context in the headers so a run's spans join the services' traces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableMapping
from typing import TypeVar

from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from pydantic import BaseModel

from grantline.contract.envelope import Event
from grantline.contract.errors import ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.wire import RequestFailed, decode_reply, encode_with_secrets, event_headers

ReplyT = TypeVar("ReplyT", bound=BaseModel)


def _trace_injector() -> Callable[[MutableMapping[str, str]], None]:
    try:
        from opentelemetry import propagate
    except ImportError:  # optional: the SDK depends on nats-py and pydantic only
        return lambda _headers: None
    return lambda headers: propagate.inject(headers)


_inject_trace = _trace_injector()


async def publish_event(nc: Client, event: Event) -> None:
    """Publish ``event`` to JetStream (its id as ``Nats-Msg-Id``) and wait for the stream's ack."""
    headers = event_headers(event)
    _inject_trace(headers)
    await nc.jetstream().publish(event.subject(), encode_message(event), headers=headers)


async def request(
    nc: Client,
    subject: str,
    message: BaseModel,
    reply_model: type[ReplyT],
    *,
    timeout: float,
    with_secrets: bool = False,
) -> ReplyT | ErrorReply:
    """Send a request and parse the reply: ``reply_model`` or the service's ``ErrorReply``.
    ``with_secrets`` sends the message's ``SecretStr`` values (a run grant) instead of the mask.
    Raises ``RequestFailed`` when no service answered in time."""
    headers: dict[str, str] = {}
    _inject_trace(headers)
    data = encode_with_secrets(message) if with_secrets else encode_message(message)
    try:
        response = await nc.request(subject, data, timeout=timeout, headers=headers)
    except (TimeoutError, NoRespondersError) as error:
        raise RequestFailed(f"{subject}: {type(error).__name__}") from error
    return decode_reply(response.data, reply_model)


async def ask_until_answered(
    nc: Client,
    subject: str,
    message: BaseModel,
    reply_model: type[ReplyT],
    *,
    timeout: float,
    attempt_timeout: float,
    with_secrets: bool = False,
) -> ReplyT | ErrorReply:
    """A request sent again while no service answers (NATS restarting, a service replaced), each
    attempt waiting up to ``attempt_timeout``, until ``timeout``; ``RequestFailed`` after that. Every
    request the SDK sends may be repeated: a resolve, a check or a grant renewal changes nothing a
    second one would undo."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        left = deadline - time.monotonic()
        try:
            return await request(
                nc,
                subject,
                message,
                reply_model,
                timeout=max(0.01, min(left, attempt_timeout)),
                with_secrets=with_secrets,
            )
        except RequestFailed:
            if deadline - time.monotonic() <= pause:
                raise
            await asyncio.sleep(pause)  # a backoff between attempts, not a wait for work
            pause = min(pause * 2, 1.0)
