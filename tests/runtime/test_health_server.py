"""The probe server of a service without an HTTP API (runtime/health_server.py), over real sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from grantline.runtime import health_server
from grantline.runtime.health import NotReady, Readiness
from grantline.runtime.health_routes import health_routes
from grantline.runtime.service_runtime import bind_http_socket


class Checks:
    """Readiness checks whose answers a test sets, counting how often they ran."""

    def __init__(self) -> None:
        self.nats_up = True
        self.reason = ""
        self.calls = 0

    async def nats(self) -> bool:
        self.calls += 1
        if self.reason:
            raise NotReady(self.reason)
        return self.nats_up


@asynccontextmanager
async def serving(readiness: Readiness) -> AsyncIterator[str]:
    listening = bind_http_socket("127.0.0.1", 0)
    port = listening.getsockname()[1]
    server = health_server.HealthServer("probe-test", readiness)
    await server.start(listening)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.wait_closed()


async def raw_exchange(base: str, request: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send bytes as they are and read until the server closes the connection (b"" if it reset it)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=read_timeout)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_answers_the_three_routes_on_one_kept_alive_connection() -> None:
    checks = Checks()
    readiness = Readiness("probe-test", {"nats": checks.nats}, ttl_seconds=0)
    async with serving(readiness) as base, httpx.AsyncClient(base_url=base) as client:
        healthz = await client.get("/healthz")
        readyz = await client.get("/readyz")
        checks.nats_up = False
        not_ready = await client.get("/readyz")
        checks.reason = "stream AUDIT is missing"
        reasons = await client.get("/readyz?verbose=1")
        metrics = await client.get("/metrics")
    assert healthz.status_code == 200 and healthz.json() == {"status": "ok", "service": "probe-test"}
    assert healthz.headers["content-type"] == "application/json"
    assert readyz.status_code == 200 and readyz.json()["dependencies"] == {"nats": True}
    assert not_ready.status_code == 503 and not_ready.json()["status"] == "not_ready"
    assert reasons.json()["reasons"] == {"nats": "stream AUDIT is missing"}
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert b"grantline_dependency_up" in metrics.content


async def test_answers_exactly_as_the_routes_an_api_service_serves() -> None:
    # The gateway and the proxy serve the same three routes through Starlette: same bytes either way.
    from starlette.applications import Starlette

    readiness = Readiness("probe-test", {"nats": Checks().nats})
    routes = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=Starlette(routes=health_routes("probe-test", readiness))),
        base_url="http://api",
    )
    async with serving(readiness) as base, httpx.AsyncClient(base_url=base) as lean, routes:
        for path in ("/healthz", "/readyz"):
            ours, theirs = await lean.get(path), await routes.get(path)
            assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)
            assert ours.headers["content-type"] == theirs.headers["content-type"]


async def test_other_paths_and_methods_are_refused_without_running_a_check() -> None:
    checks = Checks()
    readiness = Readiness("probe-test", {"nats": checks.nats}, ttl_seconds=0)
    async with serving(readiness) as base, httpx.AsyncClient(base_url=base) as client:
        missing = await client.get("/admin")
        posted = await client.post("/readyz", content=b"x" * 10)
        head = await client.head("/healthz")
    assert missing.status_code == 404
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert checks.calls == 0
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(b'{"status":"ok","service":"probe-test"}')


async def test_a_malformed_or_oversized_request_head_is_refused_and_the_connection_closed() -> None:
    async with serving(Readiness("probe-test", {})) as base:
        garbage = await raw_exchange(base, b"NOT HTTP AT ALL\r\n\r\n")
        oversized = await raw_exchange(
            base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * (64 * 1024) + b"\r\n\r\n"
        )
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert oversized.startswith(b"HTTP/1.1 431 ")


async def test_an_idle_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A client that opens a connection and trickles nothing must not hold it (slowloris).
    monkeypatch.setattr(health_server, "IDLE_SECONDS", 0.3)
    async with serving(Readiness("probe-test", {})) as base:
        started = asyncio.get_running_loop().time()
        answer = await raw_exchange(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", read_timeout=5)
        waited = asyncio.get_running_loop().time() - started
    assert answer == b""
    assert waited < 3


async def test_connections_beyond_the_limit_are_closed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_server, "MAX_CONNECTIONS", 2)
    async with serving(Readiness("probe-test", {})) as base:
        host, port = base.removeprefix("http://").split(":")
        held = [await asyncio.open_connection(host, int(port)) for _ in range(2)]
        await asyncio.sleep(0.1)
        refused = await raw_exchange(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        served = await raw_exchange(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert refused == b""
    assert served.startswith(b"HTTP/1.1 200 ")


async def test_closing_ends_open_connections_and_stops_accepting() -> None:
    listening = bind_http_socket("127.0.0.1", 0)
    port = listening.getsockname()[1]
    server = health_server.HealthServer("probe-test", Readiness("probe-test", {}))
    await server.start(listening)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.wait_closed(), timeout=2)
    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_a_pipelined_second_request_is_answered_in_order() -> None:
    async with serving(Readiness("probe-test", {})) as base:
        answer = await raw_exchange(
            base,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    first, _, second = answer.partition(b"HTTP/1.1 404 ")
    assert first.startswith(b"HTTP/1.1 200 ") and json.loads(first.split(b"\r\n\r\n", 1)[1])["status"] == "ok"
    assert second
