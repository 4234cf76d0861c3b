"""Make ``flush()`` cover what was sent before it (nats-py 2.16 and its main branch).

``Client.flush()`` sends a PING and returns on the PONG, and Grantline relies on that the way every
NATS client documents it: once it returns, the server has processed the subscriptions and
publishes sent before it. nats-py breaks that. Commands wait in the client's pending buffer until its
flusher task writes them, but ``_send_ping`` writes the PING straight to the transport, ahead of
them. The server can then answer the PING before it has read the SUB that the caller subscribed
with; a request sent at once over another connection finds "no responders", and a message published
at once is not delivered to the new subscription. Permission tests saw both, a few times in a
thousand (a runner's request to a vault that had just subscribed; a runner's subscription to its run
events missing satisfaction's answer). nats.py2 had fixed the same bug by letting the flusher send
the PING (nats-io/nats.py2#24).

``install()`` does the same: the PING joins the pending buffer behind every earlier command, and the
flusher is kicked. The PONG then means what callers take it to mean. tests/runtime/
test_nats_ordered_flush.py checks the bytes' order on the wire and fails if a nats-py upgrade
changes what this relies on.

One consequence is handled too: a PING can now wait in the pending buffer when the connection drops.
A reconnect forgets the outstanding pongs (and with them the flushes that waited, which time out) but
sends the pending buffer again, so that PING's PONG would answer a later flush before the server had
read what that flush covers. The reconnect leaves our PINGs out of the buffer first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.aio.client import PING_PROTO, Client

_INSTALLED = "_grantline_ping_behind_pending"


def install() -> None:
    """Patch ``Client._send_ping`` once per process (idempotent)."""
    original = Client._send_ping
    if getattr(original, _INSTALLED, False):
        return

    async def _send_ping(self: Any, future: asyncio.Future[Any] | None = None) -> None:
        if not self.is_connected:
            # While reconnecting, as before: a PING left in the pending buffer would be sent after
            # the reconnect clears the outstanding pongs, and its PONG would answer a later flush early.
            await original(self, future)
            return
        assert self._transport, "Client.connect must be called first"
        if future is None:
            future = asyncio.Future()
        self._pongs.append(future)
        # Behind whatever is pending (a SUB, a PUB), not ahead of it: the flusher writes them in order.
        self._pending.append(PING_PROTO)
        self._pending_data_size += len(PING_PROTO)
        await self._flush_pending()

    original_connect_init = Client._process_connect_init

    async def _process_connect_init(self: Any) -> None:
        forget_pending_pings(self)
        await original_connect_init(self)

    setattr(_send_ping, _INSTALLED, True)
    Client._send_ping = _send_ping  # type: ignore[method-assign]
    Client._process_connect_init = _process_connect_init  # type: ignore[method-assign]


def forget_pending_pings(client: Any) -> None:
    """Drop the flush PINGs still in ``client``'s pending buffer (a (re)connect forgets their pongs).

    Only ``_send_ping`` above puts ``PING_PROTO`` itself in the buffer; every other command is its own
    bytes, so the object's identity tells them apart.
    """
    pings = sum(1 for chunk in client._pending if chunk is PING_PROTO)
    if pings:
        client._pending = [chunk for chunk in client._pending if chunk is not PING_PROTO]
        client._pending_data_size -= pings * len(PING_PROTO)
