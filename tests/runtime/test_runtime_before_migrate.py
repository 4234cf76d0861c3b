"""A service started before `grantline migrate` waits, not ready, saying what is missing; then it recovers.

Services never create streams or consumers (their NATS users may not); this shows the runtime does
not try either, even on a NATS that would let it.
"""

import asyncio
import logging

import nats
import pytest
from delivery_harness import TEST_CONSUMER, create_schemas, make_consumer
from fixtures.waiting import wait_for_async

from grantline.runtime.nats.declaration import declare_consumers, declare_jetstream


async def test_a_service_started_before_migrate_is_not_ready_until_migrate_ran(
    bare_nats_url: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    create_schemas(database_url)
    caplog.set_level(logging.ERROR, logger="grantline.runtime.service_runtime")
    runtime = make_consumer(bare_nats_url, database_url)
    nc = await nats.connect(bare_nats_url)
    js = nc.jetstream()
    starting = asyncio.create_task(runtime.start())
    try:

        async def not_ready_because_of(fragment: str) -> bool:
            runtime.readiness._last = None  # no cached answer
            status = await runtime.readiness.status()
            reason = runtime.readiness.reasons.get("jetstream", "")
            return not status["jetstream"] and fragment in reason and "grantline migrate" in reason

        await wait_for_async(lambda: not_ready_because_of("stream CONNECTIONS does not exist"), timeout=10)
        assert any("grantline migrate" in r.getMessage() for r in caplog.records)
        assert not starting.done()
        assert await js.streams_info() == []  # the service created nothing

        await declare_jetstream(js)  # the streams, but not yet the consumer this service reads
        await wait_for_async(lambda: not_ready_because_of("'test-consumer'"), timeout=10)
        assert not starting.done()

        await declare_consumers(js, [TEST_CONSUMER])
        await asyncio.wait_for(starting, timeout=15)
        runtime.readiness._last = None
        assert all((await runtime.readiness.status()).values())
    finally:
        if not starting.done():
            starting.cancel()
        await runtime.stop()
        await nc.close()
