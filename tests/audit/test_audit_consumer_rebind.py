"""The ledger's consumer is migrate's: deleted, the service says so and waits; declared again, it resumes."""

import logging

import pytest
from audit_harness import ledger_count, publish, record, running_audit, verify
from fixtures.messaging import TEST_AUDIT_ACK_WAIT_SECONDS
from fixtures.waiting import wait_for_async
from nats.js import JetStreamContext

from grantline.audit.adapters.audit_stream import LEDGER_DURABLE
from grantline.runtime.nats.consumers import durable_consumers
from grantline.runtime.nats.declaration import declare_consumers
from grantline.runtime.nats.streams import AUDIT


async def _count_is(audit, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await ledger_count(audit) == expected


async def test_a_deleted_consumer_is_not_recreated_until_migrate_declares_it_again(
    nats_url: str, database_url: str, js: JetStreamContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="grantline.audit.entrypoints.stream_consumer")
    async with running_audit(nats_url, database_url) as audit:
        await publish(js, [record(detail={"i": i}) for i in range(5)])
        await wait_for_async(lambda: _count_is(audit, 5), timeout=15)

        await js.delete_consumer(AUDIT.name, LEDGER_DURABLE)
        await publish(js, [record(detail={"i": i}) for i in range(5, 10)])

        async def not_ready_saying_migrate() -> bool:
            audit.readiness._last = None  # no cached answer
            status = await audit.readiness.status()
            return not status["jetstream"] and "grantline migrate" in audit.readiness.reasons["jetstream"]

        await wait_for_async(not_ready_saying_migrate, timeout=10)
        await wait_for_async(
            lambda: any("grantline migrate" in getattr(r, "detail", "") for r in caplog.records),
            timeout=15,
            message="the ingest loop did not say the consumer needs `grantline migrate`",
        )
        assert LEDGER_DURABLE not in {info.name for info in await js.consumers_info(AUDIT.name)}

        # `grantline migrate` declares it again: it starts from the stream's beginning and the first
        # five are dropped as duplicates.
        declared = durable_consumers(audit_ingest_ack_wait_seconds=TEST_AUDIT_ACK_WAIT_SECONDS)
        await declare_consumers(js, [spec for spec in declared if spec.durable == LEDGER_DURABLE])
        await wait_for_async(lambda: _count_is(audit, 10), timeout=30)
        result = await verify(audit, "acme")
        assert result.ok and result.checked == 10
        audit.readiness._last = None
        assert (await audit.readiness.status())["jetstream"]
