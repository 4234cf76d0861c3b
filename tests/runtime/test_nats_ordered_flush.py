"""flush() covers the commands sent before it (grantline.nats_fixes.ordered_flush).

nats-py 2.16 wrote a flush's PING straight to the socket, ahead of the SUB still waiting in its
pending buffer, so the server could answer the PING before it had the subscription: a request sent
right after found "no responders" (seen in CI a few times in a thousand). These tests fail if a
nats-py upgrade changes what the fix relies on.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats
import nats.errors
from nats.aio.client import PING_PROTO, Client
from nats.aio.transport import TcpTransport

from grantline.nats_fixes import install as install_nats_fixes
from grantline.nats_fixes.ordered_flush import forget_pending_pings


def _record_writes(nc: Client) -> list[bytes]:
    """Every byte string the connection hands its transport from now on, in order."""
    written: list[bytes] = []
    transport = nc._transport
    write, writelines = transport.write, transport.writelines

    def record_write(payload: bytes) -> None:
        written.append(bytes(payload))
        write(payload)

    def record_writelines(payload: list[bytes]) -> None:
        written.extend(bytes(part) for part in payload)
        writelines(payload)

    transport.write = record_write  # type: ignore[method-assign]
    transport.writelines = record_writelines  # type: ignore[method-assign]
    return written


async def test_the_ping_of_a_flush_goes_out_behind_the_subscription(nats_url: str) -> None:
    install_nats_fixes()
    nc = await nats.connect(nats_url)
    try:
        written = _record_writes(nc)
        await nc.subscribe("ordered.flush.check")
        await nc.flush()
        commands = [part.split(b" ")[0].strip() for part in written]
        assert commands.index(b"SUB") < commands.index(b"PING"), commands
    finally:
        await nc.close()


async def test_a_request_right_after_a_responder_subscribed_and_flushed_is_answered(nats_url: str) -> None:
    install_nats_fixes()
    responder, asker = await nats.connect(nats_url), await nats.connect(nats_url)

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(b"here")

    try:
        for attempt in range(200):
            subscription = await responder.subscribe(f"ordered.flush.{attempt}", cb=answer)
            await responder.flush()
            reply = await asker.request(f"ordered.flush.{attempt}", b"", timeout=2)
            assert reply.data == b"here", attempt
            await subscription.unsubscribe()
    finally:
        await responder.close()
        await asker.close()


async def test_a_reconnect_does_not_send_a_ping_whose_flush_it_forgot(nats_url: str, monkeypatch) -> None:
    # A flush's PING can be pending when the connection drops. The reconnect forgets the flush (it
    # times out) and sends the pending buffer again; that PING's PONG would then answer a later flush
    # early. After the fix the reconnect sends only its own handshake and flush PINGs.
    install_nats_fixes()
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(nats_url, reconnected_cb=on_reconnect, reconnect_time_wait=0.05)
    try:

        async def not_yet(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            """The flusher has not run yet when the connection drops."""

        nc._flush_pending = not_yet  # type: ignore[method-assign]
        forgotten = asyncio.create_task(nc.flush(timeout=1))
        await asyncio.sleep(0.05)
        assert PING_PROTO in nc._pending
        del nc._flush_pending
        pings: list[int] = []
        monkeypatch.setattr(TcpTransport, "write", _counting(TcpTransport.write, pings))
        monkeypatch.setattr(TcpTransport, "writelines", _counting(TcpTransport.writelines, pings))
        nc._transport.close()
        await asyncio.wait_for(reconnected.wait(), timeout=10)
        with contextlib.suppress(nats.errors.TimeoutError):
            await forgotten
        assert sum(pings) == 2, pings  # CONNECT's PING and the reconnect's own flush
        await nc.flush(timeout=2)
    finally:
        await nc.close()


def _counting(write, pings: list[int]):  # type: ignore[no-untyped-def]
    def counted(self, payload):  # type: ignore[no-untyped-def]
        parts = payload if isinstance(payload, list) else [payload]
        pings.append(sum(bytes(part).count(PING_PROTO) for part in parts))
        return write(self, payload)

    return counted


def test_only_our_pings_leave_the_pending_buffer() -> None:
    client = Client()
    publish = b"PUB a 4\r\nPING\r\n"  # a payload that happens to spell PING stays
    client._pending = [publish, PING_PROTO, b"SUB b 1\r\n", PING_PROTO]
    client._pending_data_size = sum(len(chunk) for chunk in client._pending)
    forget_pending_pings(client)
    assert client._pending == [publish, b"SUB b 1\r\n"]
    assert client._pending_data_size == len(publish) + len(b"SUB b 1\r\n")
