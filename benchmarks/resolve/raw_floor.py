"""The raw floor: a bare nats-py responder whose handler does one primary-key select and one decrypt.

Run as a process by the benchmark (`python -m benchmarks.resolve.raw_floor NATS_URL DB_URL`); the
handler is the least a resolve can do, unbatched, to put the vault's figures in context.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import nats
import psycopg
import uvloop
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.aio.msg import Msg

KEY = bytes(range(32))
SUBJECT = "bench.raw_floor"


async def serve(nats_url: str, database_url: str) -> None:
    aead = AESGCM(KEY)
    db = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    nc = await nats.connect(nats_url)
    lock = asyncio.Lock()

    async def handle(msg: Msg) -> None:
        request = json.loads(msg.data)
        async with lock:
            cursor = await db.execute(
                "SELECT nonce, sealed FROM bench_raw_tokens WHERE id = %s", (request["id"],), prepare=True
            )
            nonce, sealed = await cursor.fetchone()  # type: ignore[misc]
        token = aead.decrypt(bytes(nonce), bytes(sealed), b"raw-floor").decode()
        await nc.publish(msg.reply, json.dumps({"access_token": token}).encode())

    async def on_message(msg: Msg) -> None:
        asyncio.ensure_future(handle(msg))  # noqa: RUF006 - fire and forget, as a bare responder does

    await nc.subscribe(SUBJECT, queue="raw", cb=on_message, pending_msgs_limit=1_000_000)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await nc.drain()
    await db.close()


def seed(database_url: str) -> None:
    """Create the floor's one-row table."""
    import os

    aead = AESGCM(KEY)
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, b"sbx_at_raw_floor_token_0123456789", b"raw-floor")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_tokens (id text PRIMARY KEY, nonce bytea, sealed bytea)"
        )
        conn.execute(
            "INSERT INTO bench_raw_tokens VALUES ('t1', %s, %s) ON CONFLICT (id) DO NOTHING", (nonce, sealed)
        )


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
