"""Two tiny services for testing the common delivery machinery against real NATS and Postgres.

`producer` writes events through its outbox; `consumer` applies them idempotently into its own table
through a ``BatchedConsumer``, as every service consumes its durable consumers. Each lives in its own
schema, as real services do.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fixtures.messaging import declare_test_consumers
from sqlalchemy import Column, MetaData, String, Table, create_engine, func, insert, select, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.contract import ConnectionGranted, Event
from grantline.contract.registry import decode_event
from grantline.runtime.db.engine import sqlalchemy_url
from grantline.runtime.inbox import first_delivery, processed_events_table
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import ConsumerSpec
from grantline.runtime.nats.streams import CONNECTIONS
from grantline.runtime.outbox import add_event, outbox_table
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.runtime.settings import ServiceSettings

producer_meta = MetaData(schema="test_producer")
producer_outbox = outbox_table(producer_meta)

consumer_meta = MetaData(schema="test_consumer")
consumer_processed = processed_events_table(consumer_meta)
applied = Table(
    "applied",
    consumer_meta,
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("connection_id", String(100), nullable=False),
)

DURABLE = "test-consumer"
# Declared by the tests (`declare_test_consumers`) as `grantline migrate` declares the real ones.
TEST_CONSUMER = ConsumerSpec("consumer", CONNECTIONS, DURABLE, "connections.>")


def create_schemas(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.begin() as conn:
        for meta in (producer_meta, consumer_meta):
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {meta.schema}"))
            meta.create_all(conn)
    engine.dispose()


def settings(name: str, nats_url: str, database_url: str) -> ServiceSettings:
    return ServiceSettings(
        service_name=name,
        nats_url=nats_url,
        database_url=database_url,
        environment="test",
        database_pool_size=4,
    )


def granted(connection_id: str = "conn-1", tenant_id: str = "tenant-a") -> ConnectionGranted:
    return ConnectionGranted(
        tenant_id=tenant_id,
        connection_id=connection_id,
        owner="user:alice",
        provider="google",
        scopes=["email"],
    )


def make_producer(nats_url: str, database_url: str) -> ServiceRuntime:
    runtime = ServiceRuntime(settings("producer", nats_url, database_url), outbox=producer_outbox)

    async def emit(request: Request) -> JSONResponse:
        body = await request.json()
        async with runtime.transaction() as session:
            await add_event(session, producer_outbox, granted(body["connection_id"]))
        return JSONResponse({"ok": True}, status_code=202)

    runtime._http_app = Starlette(routes=[Route("/emit", emit, methods=["POST"])])
    return runtime


def make_consumer(nats_url: str, database_url: str, seen: list[Event] | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(settings("consumer", nats_url, database_url))

    async def handle(session: AsyncSession, batch: list[Received]) -> None:
        for received in batch:
            event = received.event
            if seen is not None:
                seen.append(event)
            with received.traced(DURABLE):
                if not await first_delivery(session, consumer_processed, DURABLE, event.id):
                    continue
                assert isinstance(event, ConnectionGranted)
                await session.execute(
                    insert(applied).values(event_id=event.id, connection_id=event.connection_id)
                )

    consumer = BatchedConsumer(
        runtime, consumer=TEST_CONSUMER, decode=decode_event, handle=handle, loops=1, batch_size=10
    )
    runtime.on_start(consumer.subscribe)
    runtime.add_background_task(consumer.run)
    return runtime


async def applied_rows(runtime: ServiceRuntime) -> list[tuple[uuid.UUID, str]]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(applied.c.event_id, applied.c.connection_id))).all()
    return [(r[0], r[1]) for r in rows]


async def outbox_size(runtime: ServiceRuntime) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(producer_outbox))).scalar_one())


@asynccontextmanager
async def running(*runtimes: ServiceRuntime) -> AsyncIterator[None]:
    # The stand-in consumer's durable is declared as `grantline migrate` declares the real ones.
    await declare_test_consumers(runtimes[0].settings.nats_url, [TEST_CONSUMER])
    started: list[ServiceRuntime] = []
    try:
        for runtime in runtimes:
            await runtime.start()
            started.append(runtime)
        yield
    finally:
        for runtime in reversed(started):
            await runtime.stop()
