"""Issue 19, item 6 (consumed events): hostile bodies (tests/fixtures/nats_fuzz.py) on every subject
satisfaction consumes: `runs.requested.<tenant>`, `runs.finished.<tenant>`, `connections.*` and
`audit.token.resolved`. Each is terminated with a logged reason (every consumer drains: nothing pending
or unacknowledged), nothing in satisfaction's schema changes, and a check still works afterwards."""

from __future__ import annotations

import pytest
from fixtures.nats_fuzz import publish_hostile_events, schema_fingerprint
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import TENANT, check, idle, make_service, running

from grantline.contract import ConnectionGranted, RunFinished, RunRequested
from grantline.contract.audit import AuditRecord
from grantline.contract.satisfaction import SatisfactionReport

pytestmark = pytest.mark.fuzz

CONSUMED = [
    (f"{RunRequested.SUBJECT}.{TENANT}", RunRequested),
    (f"{RunFinished.SUBJECT}.{TENANT}", RunFinished),
    (ConnectionGranted.SUBJECT, ConnectionGranted),
    ("audit.token.resolved", AuditRecord),
]


@pytest.mark.timeout(300)
async def test_hostile_events_are_terminated_and_change_nothing(
    nats_url: str, database_url: str, nats_client: Client, caplog: pytest.LogCaptureFixture
):
    service = make_service(nats_url, database_url)
    async with running(service):
        await wait_for_async(lambda: idle(service), timeout=30, message="satisfaction starts idle")
        before = schema_fingerprint(database_url, "satisfaction")
        assert before, "the schema has tables to compare"
        js = nats_client.jetstream()
        for subject, model in CONSUMED:
            assert await publish_hostile_events(js, subject, model, examples=20) > 20

        await wait_for_async(lambda: idle(service), timeout=120, message="every consumer drains")
        assert schema_fingerprint(database_url, "satisfaction") == before
        assert any("rejected malformed message" in r.getMessage() for r in caplog.records)
        assert isinstance(await check(nats_client, "alice", ["github"]), SatisfactionReport)
