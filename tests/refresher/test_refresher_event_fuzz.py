"""Issue 19, item 6 (consumed events): hostile bodies (tests/fixtures/nats_fuzz.py) on the connection
events the refresher schedules from. Each is terminated with a logged reason (its consumer drains),
nothing in the refresher's schema changes, and a valid event afterwards is still scheduled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fixtures.nats_fuzz import publish_hostile_events, schema_fingerprint
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from refresher_harness import TENANT, VaultStandIn, refresher_settings, rows

from grantline.contract.connections import ConnectionGranted, ConnectionRevoked, TokenRefreshed
from grantline.refresher.app import create_runtime
from grantline.runtime.nats.consumers import REFRESHER_SCHEDULE

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(300)
async def test_hostile_connection_events_are_terminated_and_change_nothing(
    nats_url: str, database_url: str, nats_client: Client
):
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    await runtime.start()
    try:
        js = nats_client.jetstream()
        await wait_for_async(lambda: _drained(nats_client), timeout=30, message="the refresher starts")
        before = schema_fingerprint(database_url, "refresher")
        assert before, "the schema has tables to compare"
        for model in (ConnectionGranted, TokenRefreshed, ConnectionRevoked):
            assert await publish_hostile_events(js, model.SUBJECT, model, examples=20) > 20

        await wait_for_async(lambda: _drained(nats_client), timeout=60, message="refresher-schedule drains")
        assert schema_fingerprint(database_url, "refresher") == before

        now = datetime.now(UTC)
        valid = ConnectionGranted(
            tenant_id=TENANT,
            connection_id="c-after-fuzz",
            owner="user:alice",
            provider="sandbox",
            scopes=[],
            expires_at=now + timedelta(hours=1),
        )
        await VaultStandIn(nats_client).publish(valid)
        await wait_for_async(lambda: _scheduled(database_url, "c-after-fuzz"), timeout=30)
    finally:
        await runtime.stop()


async def _drained(nc: Client) -> bool:
    try:
        info = await nc.jetstream().consumer_info(REFRESHER_SCHEDULE.stream.name, REFRESHER_SCHEDULE.durable)
    except Exception:  # created just after start-up
        return False
    return not info.num_pending and not info.num_ack_pending


async def _scheduled(database_url: str, connection_id: str) -> bool:
    return connection_id in await rows(database_url)
