"""Ask the gateway for connect links (``gateway.connect_link.<tenant>``), best effort.

A held run's links are minted while its batch is decided, so a gateway that is down or slow must not
hold admission up: each request has a short deadline, and a link that did not come is left out (the
runner can ask again with ``RunnerClient.connect_link``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.aio.client import Client

from grantline.contract.connect_links import SUBJECT_CONNECT_LINK, ConnectLinkReply, ConnectLinkRequest
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.runtime.nats.request_reply import RequestFailed, request

log = logging.getLogger(__name__)


class GatewayConnectLinks:
    """Mints connect links through the gateway; ``None`` when it did not answer in time."""

    def __init__(self, nats: Callable[[], Client], *, timeout: float) -> None:
        self._nats = nats
        self._timeout = timeout

    async def mint(self, request: ConnectLinkRequest) -> ConnectLinkReply | None:
        """One link, or None (no gateway, a timeout, or an error reply, which is logged)."""
        subject = tenant_scoped(SUBJECT_CONNECT_LINK, request.tenant_id)
        try:
            reply = await request_link(self._nats(), subject, request, self._timeout)
        except (TimeoutError, RequestFailed):
            log.info("no connect link for a held run", extra={"subject": subject})
            return None
        if isinstance(reply, ErrorReply):
            log.warning(
                "the gateway refused a connect link",
                extra={"subject": subject, "code": reply.error.code.value, "reason": reply.error.message},
            )
            return None
        return reply


async def request_link(
    nc: Client, subject: str, message: ConnectLinkRequest, timeout: float
) -> ConnectLinkReply | ErrorReply:
    """The raw request (its own function so the deadline covers the whole exchange)."""
    async with asyncio.timeout(timeout):
        return await request(nc, subject, message, ConnectLinkReply, timeout=timeout)
