"""The schedule follows connection events: idempotent, ordered, tombstoned; hard expiries warned once."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from refresher_harness import TENANT, VaultStandIn, refresher_settings

from grantline.contract import encode_message
from grantline.contract.connections import ConnectionGranted, ConnectionRevoked, TokenRefreshed
from grantline.refresher.app import create_runtime
from grantline.refresher.entrypoints.connection_events import DURABLE
from grantline.runtime.nats.streams import CONNECTIONS


async def schedule_row(database_url: str, connection_id: str) -> dict[str, object] | None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        await cursor.execute(
            "SELECT * FROM refresher.refresh_schedule WHERE connection_id = %s", (connection_id,)
        )
        return await cursor.fetchone()


async def consumer_caught_up(nc: Client) -> bool:
    from nats.js.errors import NotFoundError

    try:
        info = await nc.jetstream().consumer_info(CONNECTIONS.name, DURABLE)
    except NotFoundError:  # not created yet: not caught up
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


def event(cls: type, connection_id: str, at: datetime, **fields: object):  # type: ignore[no-untyped-def]
    return cls(
        tenant_id=TENANT,
        connection_id=connection_id,
        owner="user:alice",
        provider="sandbox",
        occurred_at=at,
        **fields,
    )


async def test_events_are_applied_once_and_in_order(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    publisher = VaultStandIn(nats_client)
    await runtime.start()
    try:
        now = datetime.now(UTC)
        newer = event(TokenRefreshed, "c-order", now, expires_at=now + timedelta(hours=2))
        older = event(
            ConnectionGranted, "c-order", now - timedelta(minutes=30), expires_at=now + timedelta(hours=1)
        )
        await publisher.publish(newer)
        await publisher.publish(older)  # arrives late: must not move the schedule back
        # The same event redelivered under another message id (JetStream cannot drop it): applied once.
        await nats_client.jetstream().publish(
            newer.subject(), encode_message(newer), headers={"Nats-Msg-Id": "dup"}
        )
        await wait_for_async(lambda: consumer_caught_up(nats_client), timeout=10)
        row = await schedule_row(database_url, "c-order")
        assert row is not None and row["expires_at"] == newer.expires_at and row["last_event_id"] == newer.id
        assert row["state"] == "scheduled" and row["due_at"] < newer.expires_at  # type: ignore[operator]

        revoked = event(ConnectionRevoked, "c-order", now + timedelta(seconds=1), reason="user")
        late_grant = event(
            ConnectionGranted,
            "c-order",
            now + timedelta(milliseconds=500),
            expires_at=now + timedelta(seconds=1),
        )
        await publisher.publish(revoked)
        await publisher.publish(late_grant)
        never_expires = event(ConnectionGranted, "c-github", now, expires_at=None, refreshable=False)
        await publisher.publish(never_expires)
        await wait_for_async(lambda: consumer_caught_up(nats_client), timeout=10)
        row = await schedule_row(database_url, "c-order")
        assert row is not None and row["state"] == "ended" and row["next_attempt_at"] is None
        github = await schedule_row(database_url, "c-github")
        assert github is not None and github["state"] == "unscheduled" and github["next_attempt_at"] is None
    finally:
        await runtime.stop()


async def test_a_hard_expiry_in_the_window_is_announced_once(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    publisher = VaultStandIn(nats_client)
    await runtime.start()
    try:
        js = nats_client.jetstream()
        expiring = await js.pull_subscribe(
            "connections.expiring", durable="test-expiring", stream=CONNECTIONS.name
        )
        now = datetime.now(UTC)
        hard = now + timedelta(days=3)
        await publisher.publish(
            event(
                ConnectionGranted,
                "c-ms",
                now,
                expires_at=now + timedelta(hours=1),
                refresh_token_expires_at=hard,
            )
        )
        # Far from its hard expiry: no warning.
        await publisher.publish(
            event(
                ConnectionGranted,
                "c-far",
                now,
                expires_at=now + timedelta(hours=1),
                refresh_token_expires_at=now + timedelta(days=60),
            )
        )
        messages = await wait_for_async(lambda: _fetch(expiring), timeout=10)
        assert len(messages) == 1
        warning = ConnectionGranted.model_validate_json(messages[0].data) if False else messages[0]
        assert b'"connection_id":"c-ms"' in warning.data
        # A refresh that keeps the same refresh token (and expiry) does not warn again; a rotation to a
        # new expiry inside the window does.
        await publisher.publish(
            event(TokenRefreshed, "c-ms", now + timedelta(seconds=1), expires_at=now + timedelta(hours=2))
        )
        await wait_for_async(lambda: consumer_caught_up(nats_client), timeout=10)
        await asyncio.sleep(0.3)  # give a wrong second warning the chance to appear (three scan periods)
        assert await _fetch(expiring, timeout=0.2) == []
        await publisher.publish(
            event(
                TokenRefreshed,
                "c-ms",
                now + timedelta(seconds=2),
                expires_at=now + timedelta(hours=3),
                refresh_token_rotated=True,
                refresh_token_expires_at=hard + timedelta(days=1),
            )
        )
        again = await wait_for_async(lambda: _fetch(expiring), timeout=10)
        assert len(again) == 1 and b'"connection_id":"c-ms"' in again[0].data
    finally:
        await runtime.stop()


async def _fetch(subscription, timeout: float = 0.5) -> list:  # type: ignore[no-untyped-def,type-arg]
    try:
        messages = await subscription.fetch(10, timeout=timeout)
    except Exception:  # nats TimeoutError: nothing yet
        return []
    for message in messages:
        await message.ack()
    return messages
