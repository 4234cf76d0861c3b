"""Issue 19, item 6 (consumed events): hostile bodies on the AUDIT stream (malformed, oversized,
wrongly-typed, boundary; tests/fixtures/nats_fuzz.py) reach the ledger's consumer, which has its own
fast-path decoder. Each is terminated with a logged reason (none stays pending or unacknowledged), no
ledger row is written for them, and a valid record published after them is still chained."""

from __future__ import annotations

import pytest
from audit_harness import ledger_count, publish, record, running_audit
from fixtures.nats_fuzz import publish_hostile_events
from fixtures.waiting import wait_for_async
from nats.js import JetStreamContext

from grantline.contract.audit import AuditRecord
from grantline.runtime.nats.consumers import AUDIT_LEDGER

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(300)
async def test_hostile_audit_events_are_terminated_and_write_nothing(
    nats_url: str, database_url: str, js: JetStreamContext, caplog: pytest.LogCaptureFixture
):
    async with running_audit(nats_url, database_url) as audit:
        assert await publish_hostile_events(js, "audit.token.resolved", AuditRecord) > 20

        await publish(js, [record(run_id="after-the-fuzz")])

        await wait_for_async(
            lambda: _ledger_has_one(audit), timeout=60, message="the valid record is chained"
        )
        info = await js.consumer_info(AUDIT_LEDGER.stream.name, AUDIT_LEDGER.durable)
        assert info.num_pending == 0 and info.num_ack_pending == 0, info
        assert await ledger_count(audit) == 1
        assert sum("rejected" in r.getMessage() or "malformed" in r.getMessage() for r in caplog.records)


async def _ledger_has_one(audit) -> bool:
    return await ledger_count(audit) >= 1
