"""Ingest rides out Postgres and NATS restarts: nothing is lost, nothing is stored twice."""

import asyncio

from audit_harness import ledger_count, publish, record, running_audit, verify
from fixtures.infra import ServerHandle
from fixtures.waiting import wait_for_async
from nats.js import JetStreamContext


async def _count_is(audit, expected: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return await ledger_count(audit) == expected
    except Exception:
        return False  # the database may still be restarting


async def test_records_survive_postgres_and_nats_restarts(
    nats_url: str,
    database_url: str,
    js: JetStreamContext,
    postgres_server: ServerHandle,
    nats_server: ServerHandle,
) -> None:
    postgres_server.require_restart()
    nats_server.require_restart()
    async with running_audit(nats_url, database_url) as audit:
        await publish(js, [record(detail={"i": i}) for i in range(20)])
        await wait_for_async(lambda: _count_is(audit, 20), timeout=15)

        await asyncio.to_thread(postgres_server.stop)
        await publish(js, [record(detail={"i": i}) for i in range(20, 40)])
        await asyncio.to_thread(postgres_server.start)
        await wait_for_async(lambda: _count_is(audit, 40), timeout=30)

        await asyncio.to_thread(nats_server.restart)
        await wait_for_async(lambda: audit.nats.is_connected, timeout=15)
        published = False
        while not published:  # our own test client reconnects too; publish once it has
            try:
                await publish(js, [record(detail={"i": i}) for i in range(40, 60)])
                published = True
            except Exception:
                await asyncio.sleep(0.1)
        await wait_for_async(lambda: _count_is(audit, 60), timeout=30)

        result = await verify(audit, "acme")
        assert result.ok and result.checked == 60
