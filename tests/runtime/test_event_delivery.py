"""Events cross services through the outbox and JetStream: exactly once, surviving outages."""

import asyncio
import logging

import pytest
from delivery_harness import (
    DURABLE,
    add_event,
    applied_rows,
    create_schemas,
    granted,
    make_consumer,
    make_producer,
    outbox_size,
    producer_outbox,
    running,
)
from fixtures.waiting import wait_for_async

from grantline.contract import encode_message
from grantline.runtime.nats.connection import connect_nats
from grantline.runtime.nats.streams import CONNECTIONS


@pytest.fixture
def harness_db(database_url: str) -> str:
    create_schemas(database_url)
    return database_url


async def test_event_through_outbox_is_consumed_exactly_once(nats_url: str, harness_db: str) -> None:
    producer = make_producer(nats_url, harness_db)
    consumer = make_consumer(nats_url, harness_db)
    async with running(producer, consumer):
        event = granted("conn-once")
        async with producer.transaction() as session:
            await add_event(session, producer_outbox, event)
        await wait_for_async(lambda: applied_rows(consumer), timeout=10)
        assert await applied_rows(consumer) == [(event.id, "conn-once")]
        await wait_for_async(lambda: _is_zero(outbox_size(producer)), timeout=5)
        # Nothing else arrives later: the stream holds exactly one message and it was acknowledged.
        info = await producer.nats.jetstream().consumer_info(CONNECTIONS.name, DURABLE)
        assert info.num_pending == 0 and info.num_ack_pending == 0
        assert (await producer.nats.jetstream().stream_info(CONNECTIONS.name)).state.messages == 1


async def _is_zero(value: "asyncio.Future[int] | object") -> bool:
    return (await value) == 0  # type: ignore[misc]


async def test_rolled_back_transaction_publishes_nothing(nats_url: str, harness_db: str) -> None:
    producer = make_producer(nats_url, harness_db)
    async with running(producer):
        with pytest.raises(RuntimeError):
            async with producer.transaction() as session:
                await add_event(session, producer_outbox, granted("conn-rollback"))
                raise RuntimeError("state change failed")
        assert await outbox_size(producer) == 0
        await asyncio.sleep(0)  # the relay has nothing to do; the stream stays empty
        assert (await producer.nats.jetstream().stream_info(CONNECTIONS.name)).state.messages == 0


async def test_redelivered_event_is_ignored(nats_url: str, harness_db: str) -> None:
    seen: list[object] = []
    producer = make_producer(nats_url, harness_db)
    consumer = make_consumer(nats_url, harness_db, seen)
    async with running(producer, consumer):
        event = granted("conn-dup")
        async with producer.transaction() as session:
            await add_event(session, producer_outbox, event)
        await wait_for_async(lambda: applied_rows(consumer), timeout=10)
        # The same event again under a different Nats-Msg-Id (so JetStream cannot drop it): a
        # redelivery as a consumer sees it. It must be handled and change nothing.
        js = producer.nats.jetstream()
        await js.publish(event.subject(), encode_message(event), headers={"Nats-Msg-Id": "replay-1"})
        await wait_for_async(lambda: len(seen) >= 2, timeout=10)
        info = await js.consumer_info(CONNECTIONS.name, DURABLE)
        await wait_for_async(
            lambda: _acked(js), timeout=5, message="the replayed message was not acknowledged"
        )
        assert await applied_rows(consumer) == [(event.id, "conn-dup")]
        assert info.num_pending == 0


async def _acked(js: object) -> bool:
    info = await js.consumer_info(CONNECTIONS.name, DURABLE)  # type: ignore[attr-defined]
    return bool(info.num_ack_pending == 0 and info.num_pending == 0)


async def test_same_event_id_published_twice_is_stored_once(nats_url: str) -> None:
    from grantline.runtime.settings import ServiceSettings

    nc = await connect_nats(ServiceSettings(nats_url=nats_url, environment="test"))
    try:
        js = nc.jetstream()
        event = granted("conn-dedupe")
        for _ in range(3):
            await js.publish(event.subject(), encode_message(event), headers={"Nats-Msg-Id": str(event.id)})
        assert (await js.stream_info(CONNECTIONS.name)).state.messages == 1
    finally:
        await nc.close()


async def test_malformed_message_is_rejected_and_does_not_block(
    nats_url: str, harness_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    producer = make_producer(nats_url, harness_db)
    consumer = make_consumer(nats_url, harness_db)
    caplog.set_level(logging.WARNING, logger="grantline.runtime.nats.batched_consumer")
    async with running(producer, consumer):
        js = producer.nats.jetstream()
        await js.publish("connections.granted", b"not json at all", headers={"Nats-Msg-Id": "bad-1"})
        await js.publish(
            "connections.granted",
            b'{"type": "connections.granted", "tenant_id": "t"}',
            headers={"Nats-Msg-Id": "bad-2"},
        )
        good = granted("conn-after-garbage")
        async with producer.transaction() as session:
            await add_event(session, producer_outbox, good)
        await wait_for_async(lambda: applied_rows(consumer), timeout=10)
        assert await applied_rows(consumer) == [(good.id, "conn-after-garbage")]
        await wait_for_async(lambda: _acked(js), timeout=5)
    reasons = [r for r in caplog.records if r.getMessage() == "rejected malformed message"]
    assert len(reasons) == 2
    assert all(getattr(r, "reason", "") for r in reasons)
    assert "connection_id" in reasons[1].reason  # names the missing field


async def test_events_written_while_nats_is_down_are_delivered_after_it_returns(
    nats_server, nats_url: str, harness_db: str
) -> None:
    nats_server.require_restart()
    producer = make_producer(nats_url, harness_db)
    consumer = make_consumer(nats_url, harness_db)
    async with running(producer, consumer):
        first = granted("conn-before")
        async with producer.transaction() as session:
            await add_event(session, producer_outbox, first)
        await wait_for_async(lambda: _count_is(consumer, 1), timeout=10)

        nats_server.stop()
        during = [granted(f"conn-during-{i}") for i in range(5)]
        for event in during:
            async with producer.transaction() as session:  # state changes go on while NATS is away
                await add_event(session, producer_outbox, event)
        assert await outbox_size(producer) == 5
        nats_server.start()

        await wait_for_async(lambda: _count_is(consumer, 6), timeout=30)
        rows = await applied_rows(consumer)
        assert sorted(r[1] for r in rows) == sorted(["conn-before"] + [e.connection_id for e in during])
        assert await outbox_size(producer) == 0


async def _count_is(runtime: object, n: int) -> bool:
    return len(await applied_rows(runtime)) == n  # type: ignore[arg-type]
