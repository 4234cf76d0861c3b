"""The refresher across a Postgres restart: its claims, outcome writes and schedule updates all lose
their connections, and no refresh may be lost or repeated for it."""

import asyncio

from fixtures.waiting import wait_for_async
from refresher_harness import VaultStandIn, consumer_exists, refresher_settings, settled

from grantline.refresher.app import create_runtime


async def test_refreshes_due_around_a_postgres_restart_are_each_done_once(
    postgres_server, nats_url: str, database_url: str, vault: VaultStandIn
) -> None:
    postgres_server.require_restart()
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    await runtime.start()
    try:
        await wait_for_async(lambda: consumer_exists(vault), timeout=10)
        # Two-second tokens are due after one second (short tokens are refreshed halfway).
        await vault.grant("c-before", expires_in=2)
        await wait_for_async(lambda: vault.refreshes["c-before"] >= 1, timeout=15)
        await asyncio.to_thread(postgres_server.stop)
        await vault.grant("c-during", expires_in=2)  # the event waits in JetStream
        await asyncio.sleep(1.5)  # claims and the consumer fail against the stopped server meanwhile
        await asyncio.to_thread(postgres_server.start)
        await vault.grant("c-after", expires_in=2)
        ids = ["c-before", "c-during", "c-after"]
        await wait_for_async(lambda: all(vault.refreshes[cid] >= 1 for cid in ids), timeout=60)
        await wait_for_async(lambda: settled(database_url, ids), timeout=30)
    finally:
        await runtime.stop()
    # The stand-in hands out hour-long tokens: each connection needed exactly one refresh.
    assert {cid: vault.refreshes[cid] for cid in ids} == dict.fromkeys(ids, 1)
