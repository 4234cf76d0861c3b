"""The audit service stores AUDIT stream records in per-tenant hash chains: in order, exactly once."""

import json
import logging

import pytest
from audit_harness import EVERY_ACTION, ledger_count, ledger_rows, publish, record, running_audit, verify
from fixtures.waiting import wait_for_async
from nats.js import JetStreamContext

from grantline.audit.adapters.audit_stream import LEDGER_DURABLE
from grantline.runtime.nats.streams import AUDIT


async def test_records_of_every_action_are_chained_in_order_per_tenant_exactly_once(
    nats_url: str, database_url: str, js: JetStreamContext
) -> None:
    async with running_audit(nats_url, database_url) as audit:
        published = {"acme": [], "globex": []}
        batch = []
        for i, action in enumerate(EVERY_ACTION * 3):
            tenant = "acme" if i % 3 else "globex"
            item = record(tenant, action, run_id=f"run-{i}", detail={"i": i})
            published[tenant].append(item.id)
            batch.append(item)
        await publish(js, batch)
        # The same record again under another Nats-Msg-Id: JetStream keeps both, the ledger stores one.
        await publish(js, [batch[0]], msg_id="another-msg-id")
        total = len(batch)
        await wait_for_async(lambda: _equals(ledger_count(audit), total), timeout=15)

        for tenant, ids in published.items():
            rows = await ledger_rows(audit, tenant)
            assert [row.record_id for row in rows] == ids
            assert [row.seq for row in rows] == list(range(1, len(ids) + 1))
            result = await verify(audit, tenant)
            assert result.ok and result.checked == len(ids)
        stored_actions = {row.action for row in await ledger_rows(audit)}
        assert stored_actions == set(EVERY_ACTION)

        # The duplicate was acknowledged, not left pending, and nothing more arrives.
        await wait_for_async(lambda: _consumer_idle(js), timeout=10)
        assert await ledger_count(audit) == total


async def test_a_malformed_message_is_terminated_and_does_not_block_ingestion(
    nats_url: str, database_url: str, js: JetStreamContext, caplog: pytest.LogCaptureFixture
) -> None:
    token = "sbx_at_CANARYmalformed0123456789"
    async with running_audit(nats_url, database_url) as audit:
        good = [record(run_id="run-1"), record(run_id="run-2")]
        await publish(js, good[:1])
        await js.publish("audit.token.resolved", b"not json at all")
        # A value that is not allowed, carrying a token: the reason is logged, the value never is.
        bad = json.loads(record().model_dump_json())
        bad["outcome"] = token
        await js.publish("audit.token.resolved", json.dumps(bad).encode())
        nul = json.loads(record().model_dump_json())
        nul["detail"] = {"x": "a\u0000b"}
        await js.publish("audit.token.resolved", json.dumps(nul).encode())
        await publish(js, good[1:])
        with caplog.at_level(logging.WARNING):
            await wait_for_async(lambda: _equals(ledger_count(audit), 2), timeout=15)
            await wait_for_async(lambda: _consumer_idle(js), timeout=10)
        assert [row.record_id for row in await ledger_rows(audit)] == [g.id for g in good]
        rejected = [r for r in caplog.records if r.getMessage() == "rejected malformed audit message"]
        assert len(rejected) == 3
        assert token not in caplog.text
        assert all(token not in json.dumps(r.__dict__, default=str) for r in caplog.records)


async def _equals(value: object, expected: int) -> bool:
    return (await value) == expected  # type: ignore[misc]


async def _consumer_idle(js: JetStreamContext) -> bool:
    from nats.js.errors import NotFoundError

    try:
        info = await js.consumer_info(AUDIT.name, LEDGER_DURABLE)
    except NotFoundError:  # the ingest loop creates its consumer just after start-up
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0
