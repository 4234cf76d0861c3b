"""The HTTP server of a service without an HTTP API of its own: ``/healthz``, ``/readyz``, ``/metrics``.

Six of the eight services answer only probes and scrapes. uvicorn and Starlette (with click,
python-multipart and anyio, which they bring) cost such a service about 3.5 MB at rest for three GET
routes (benchmarks/memory). Here h11, the HTTP/1.1 library uvicorn itself uses, parses and frames
every message; this module only reads requests off the socket, routes the three paths and bounds
what a client may hold: the size of a request head, how long a connection may sit idle or trickle
its request, and how many connections are open at once. A service with an API of its own (the
gateway, the proxy) is served by uvicorn with the same routes (``health_routes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import h11

from grantline.runtime.health import HEALTH_PATHS, HealthAnswer, Readiness, health_answer

log = logging.getLogger(__name__)

# Probes and scrapes send a request line and a few headers; a head larger than this is refused.
MAX_REQUEST_HEAD = 16 * 1024
# A request must arrive, and a kept-alive connection be reused, within this long (kubelet probes
# time out after 1 s by default; Prometheus scrapes every 15 s or more on a fresh or kept connection).
IDLE_SECONDS = 10.0
# kubelet, Prometheus and an operator's curl need a handful; beyond this a connection is closed at once.
MAX_CONNECTIONS = 64
_READ_SIZE = 4096
_ALLOWED = b"GET, HEAD"


class HealthServer:
    """Serves the three routes on an already bound socket until ``wait_closed``."""

    def __init__(self, service: str, readiness: Readiness) -> None:
        self._service = service
        self._readiness = readiness
        self._server: asyncio.Server | None = None
        # Each open connection's task and its writer (closing a writer ends the task's read).
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, listening: socket.socket) -> None:
        """Accept connections on ``listening`` (bound by the runtime, so a taken port fails at start)."""
        self._server = await asyncio.start_server(self._accepted, sock=listening)

    def stop_accepting(self) -> None:
        """Accept no more connections (probes during shutdown find the port closed)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def wait_closed(self) -> None:
        """End the connections still open (a probe's answer is worth nothing once the service stopped)."""
        self.stop_accepting()
        for writer in self._connections.values():
            writer.transport.abort()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._server is None or len(self._connections) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._connections[task] = writer
        try:
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client left, or sat idle too long: nothing to answer
        except Exception:
            log.exception("health endpoint failed", extra={"service": self._service})
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        while True:
            try:
                request = await self._next_request(conn, reader)
            except h11.RemoteProtocolError as error:
                # A malformed or oversized head: say so if the protocol still allows a response.
                # (h11 hints 400, or 431 for a head over MAX_REQUEST_HEAD.)
                if conn.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
                    answer = _plain(error.error_status_hint, "Bad Request")
                    await _send(conn, writer, answer, head_only=False, close=True)
                return
            if request is None:
                return
            answer, allow = await self._answer(request)
            # A request that came with a body we did not read cannot be followed by another.
            close = conn.their_state is not h11.DONE
            await _send(conn, writer, answer, head_only=request.method == b"HEAD", close=close, allow=allow)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _next_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
        """The next request's head (None when the client closed), within IDLE_SECONDS."""
        async with asyncio.timeout(IDLE_SECONDS):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(_READ_SIZE))
                    continue
                if isinstance(event, h11.Request):
                    # Probes send no body: this reads the request's end at once. A request with a
                    # body is answered without reading it, and its connection then closed.
                    with contextlib.suppress(h11.RemoteProtocolError):
                        conn.next_event()
                    return event
                return None  # ConnectionClosed, or PAUSED after a half-read message

    async def _answer(self, request: h11.Request) -> tuple[HealthAnswer, bytes | None]:
        path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
        if path not in HEALTH_PATHS:
            return _plain(404, "Not Found"), None
        if request.method not in {b"GET", b"HEAD"}:
            return _plain(405, "Method Not Allowed"), _ALLOWED
        answer = await health_answer(path, self._service, self._readiness)
        assert answer is not None  # one of HEALTH_PATHS
        return answer, None


def _plain(status: int, text: str) -> HealthAnswer:
    return HealthAnswer(status, "text/plain; charset=utf-8", text.encode())


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    answer: HealthAnswer,
    *,
    head_only: bool,
    close: bool,
    allow: bytes | None = None,
) -> None:
    headers = [
        (b"content-type", answer.content_type.encode()),
        (b"content-length", str(len(answer.body)).encode()),
    ]
    if allow is not None:
        headers.append((b"allow", allow))
    if close:
        headers.append((b"connection", b"close"))
    out = conn.send(h11.Response(status_code=answer.status, headers=headers)) or b""
    if not head_only:
        out += conn.send(h11.Data(data=answer.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    writer.write(out)
    async with asyncio.timeout(IDLE_SECONDS):
        await writer.drain()
