"""uvicorn serving a service's own HTTP API (the gateway's, the proxy's) on the runtime's bound socket.

Imported only by a service with an API: the others answer probes with ``health_server`` and never load
uvicorn or Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Protocol

from starlette.types import ASGIApp


class HttpServer(Protocol):
    """What the runtime needs of either HTTP server at shutdown."""

    def stop_accepting(self) -> None: ...

    async def wait_closed(self) -> None: ...


class AsgiServer:
    """uvicorn serving a service's own API (with the health routes added) on the bound socket."""

    def __init__(self, server: Any, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    @classmethod
    async def start(cls, app: ASGIApp, listening: socket.socket) -> AsgiServer:
        """Serve ``app`` on ``listening`` until ``stop_accepting``."""
        import uvicorn

        # uvicorn serves the socket it is given; host and port only name it in uvicorn's log line.
        host, port = listening.getsockname()[:2]
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        # The runtime owns SIGTERM/SIGINT (stop consumers, drain, then close HTTP); uvicorn must not
        # install its own handlers over ours.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        return cls(server, asyncio.create_task(server.serve(sockets=[listening])))

    def stop_accepting(self) -> None:
        """Ask uvicorn to finish (it stops accepting, then lets in-flight requests end)."""
        self._server.should_exit = True

    async def wait_closed(self) -> None:
        """Until uvicorn has finished."""
        await self._task
