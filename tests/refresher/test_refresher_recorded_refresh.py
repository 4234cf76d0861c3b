"""A connections.refreshed whose expiry the worker already wrote only advances the event stamp."""

from datetime import UTC, datetime, timedelta

import psycopg
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from refresher_harness import VaultStandIn, refresher_settings
from test_refresher_schedule import consumer_caught_up, event, schedule_row

from grantline.contract import encode_message
from grantline.contract.connections import ConnectionGranted, TokenRefreshed
from grantline.refresher.app import create_runtime


async def test_a_refresh_already_recorded_by_the_worker_is_stamped_and_keeps_order(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    publisher = VaultStandIn(nats_client)
    await runtime.start()
    try:
        now = datetime.now(UTC)
        granted = event(
            ConnectionGranted, "c-rec", now - timedelta(hours=1), expires_at=now + timedelta(hours=1)
        )
        await publisher.publish(granted)
        await wait_for_async(lambda: consumer_caught_up(nats_client), timeout=10)
        fresh = now + timedelta(hours=2)
        # What the worker's outcome write does with the vault's reply, before the event arrives.
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await conn.execute(
                "UPDATE refresher.refresh_schedule SET expires_at = %s WHERE connection_id = 'c-rec'",
                (fresh,),
            )
        refreshed = event(TokenRefreshed, "c-rec", now, expires_at=fresh)
        older = event(
            TokenRefreshed, "c-rec", now - timedelta(minutes=30), expires_at=now + timedelta(minutes=90)
        )
        await publisher.publish(refreshed)
        await publisher.publish(older)  # late: must not move the expiry back
        await nats_client.jetstream().publish(
            refreshed.subject(), encode_message(refreshed), headers={"Nats-Msg-Id": "again"}
        )
        await wait_for_async(lambda: consumer_caught_up(nats_client), timeout=10)
        row = await schedule_row(database_url, "c-rec")
        assert row is not None and row["state"] == "scheduled"
        assert row["expires_at"] == fresh and row["last_event_id"] == refreshed.id
    finally:
        await runtime.stop()
