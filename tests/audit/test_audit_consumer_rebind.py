"""The ledger's own pull loop: a deleted durable consumer is created again and ingest carries on."""

from audit_harness import ledger_count, publish, record, running_audit, verify
from fixtures.waiting import wait_for_async
from nats.js import JetStreamContext

from grantline.audit.adapters.audit_stream import LEDGER_DURABLE
from grantline.common.nats.streams import AUDIT


async def _count_is(audit, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await ledger_count(audit) == expected


async def test_a_deleted_consumer_is_bound_again_and_records_keep_arriving(
    nats_url: str, database_url: str, js: JetStreamContext
) -> None:
    async with running_audit(nats_url, database_url) as audit:
        await publish(js, [record(detail={"i": i}) for i in range(5)])
        await wait_for_async(lambda: _count_is(audit, 5), timeout=15)

        await js.delete_consumer(AUDIT.name, LEDGER_DURABLE)
        await publish(js, [record(detail={"i": i}) for i in range(5, 10)])
        # The new consumer starts from the stream's beginning: the first five are dropped as duplicates.
        await wait_for_async(lambda: _count_is(audit, 10), timeout=30)
        result = await verify(audit, "acme")
        assert result.ok and result.checked == 10
