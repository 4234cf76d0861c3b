"""flush() covers the commands sent before it (grantline.nats_fixes.ordered_flush).

nats-py 2.16 wrote a flush's PING straight to the socket, ahead of the SUB still waiting in its
pending buffer, so the server could answer the PING before it had the subscription: a request sent
right after found "no responders" (seen in CI a few times in a thousand). These tests fail if a
nats-py upgrade changes what the fix relies on.
"""

from __future__ import annotations

import nats
import nats.errors
from nats.aio.client import Client

from grantline.nats_fixes import install as install_nats_fixes


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
