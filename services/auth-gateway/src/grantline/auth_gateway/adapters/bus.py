"""NATS request-reply to the vault, satisfaction and audit services, as the gateway uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from nats.aio.client import Client
from pydantic import BaseModel, ValidationError

from grantline.auth_gateway.service.problems import Problem, from_error_reply, service_unavailable
from grantline.contract.errors import ErrorReply
from grantline.runtime.nats.request_reply import RequestFailed, request
from grantline.runtime.nats.secret_wire import request_with_secrets

ReplyT = TypeVar("ReplyT", bound=BaseModel)


class Bus:
    """Sends requests; an error reply or silence becomes a `Problem` for the HTTP edge."""

    def __init__(self, nats: Callable[[], Client], *, timeout: float) -> None:
        # A callable, because the runtime connects NATS only when it starts.
        self._nats = nats
        self._timeout = timeout

    async def ask(
        self, subject: str, message: BaseModel, reply_model: type[ReplyT], *, with_secrets: bool = False
    ) -> ReplyT:
        """The reply to `message`, or raise `Problem` (503 when nobody answered)."""
        reply = await self.ask_or_error(subject, message, reply_model, with_secrets=with_secrets)
        if isinstance(reply, ErrorReply):
            raise from_error_reply(reply)
        return reply

    async def ask_or_error(
        self, subject: str, message: BaseModel, reply_model: type[ReplyT], *, with_secrets: bool = False
    ) -> ReplyT | ErrorReply:
        """The reply or the error reply; raise `Problem` only when nobody answered.

        `with_secrets` sends `SecretStr` fields in clear: only for requests whose purpose is to hand
        the vault a secret (code exchange, provider-app secrets, API-key connections).
        """
        service = subject.split(".", 1)[0]
        try:
            nc = self._nats()
        except AssertionError:  # not started yet
            raise service_unavailable(service) from None
        if not nc.is_connected:
            raise service_unavailable(service)
        try:
            send = request_with_secrets if with_secrets else request
            return await send(nc, subject, message, reply_model, timeout=self._timeout)
        except RequestFailed:
            raise service_unavailable(service) from None
        except ValidationError:
            # A reply we cannot read (another version of the service): not the caller's fault.
            raise Problem(
                502, "bad_gateway", f"the {service} service sent a reply we could not read"
            ) from None
