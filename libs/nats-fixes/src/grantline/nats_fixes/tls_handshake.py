"""Keep a failed TLS handshake from stopping a NATS connection for good (nats-py 2.16; upstream
nats-io/nats.py#382 and #718).

nats-py upgrades its TCP stream with ``loop.start_tls``, which hands the socket to an SSL protocol.
When the handshake fails (a timeout, or plaintext where TLS was expected: nats-server's
``handshake_first`` falls back to a plaintext INFO line when a loaded client sends its ClientHello
late), asyncio closes the socket, but the plain ``StreamWriter`` nats-py still holds belongs to a
protocol that is never told the connection was lost. nats-py then closes that writer and awaits
``wait_closed()`` before its next attempt, and that await never returns: the client neither
connects nor retries, on start-up (``nats.connect`` never returns) and on every reconnect alike (a
server that restarts mid-handshake is enough).

``install()`` wraps the transport's ``connect_tls`` so that, on failure, it forgets the dead writer:
closing it is then a no-op and the client goes on to its next attempt with a new transport, as it
does after any other failed connect. tests/runtime/test_nats_tls_retry.py plays the server's
fallback against services and runners and fails if a nats-py upgrade changes what this relies on.
"""

from __future__ import annotations

import functools
from typing import Any

from nats.aio.transport import TcpTransport

_INSTALLED = "_grantline_forgets_writer_on_failure"


def install() -> None:
    """Patch ``TcpTransport.connect_tls`` once per process (idempotent)."""
    original = TcpTransport.connect_tls
    if getattr(original, _INSTALLED, False):
        return

    @functools.wraps(original)
    async def connect_tls(self: TcpTransport, *args: Any, **kwargs: Any) -> None:
        try:
            await original(self, *args, **kwargs)
        except BaseException:
            # The socket is already closed by start_tls; its old writer can never report it.
            self._io_writer = None
            raise

    setattr(connect_tls, _INSTALLED, True)
    TcpTransport.connect_tls = connect_tls  # type: ignore[method-assign]
