"""Revocation reaches exactly the in-flight runs that resolved the connection, and no others."""

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import (
    TENANT,
    RunEvents,
    granted,
    idle,
    make_service,
    publish,
    requested,
    resolved,
    revoked,
    running,
    stream_events,
)

from grantline.contract import RunConnectionRevoked, RunFinished
from grantline.runtime.service_runtime import ServiceRuntime


async def _tracked(runtime: ServiceRuntime, count: int) -> bool:
    from sqlalchemy import func, select

    from grantline.satisfaction.adapters.tables import run_connections

    async with runtime.sessions() as session:
        return (await session.scalar(select(func.count()).select_from(run_connections))) == count


async def test_revocation_reaches_each_in_flight_run_that_used_the_connection(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    service = make_service(nats_url, database_url)
    async with running(service):
        await publish(nats_client, granted("c-1", scopes=["gmail.readonly"]))
        await publish(nats_client, granted("c-2", provider="github"))
        for run_id in ("r-used", "r-other", "r-done", "r-twice"):
            await publish(nats_client, requested(run_id, ["google"]))
        await publish(nats_client, resolved("r-used", "c-1"))
        await publish(nats_client, resolved("r-twice", "c-1"))
        await publish(nats_client, resolved("r-twice", "c-1"))  # a second tool call, another audit record
        await publish(nats_client, resolved("r-other", "c-2", provider="github"))
        await publish(nats_client, resolved("r-done", "c-1"))
        await wait_for_async(lambda: _tracked(service, 4), timeout=10)
        await publish(nats_client, RunFinished(tenant_id=TENANT, run_id="r-done"))
        await wait_for_async(lambda: _tracked(service, 3), timeout=10)

        await publish(nats_client, revoked("c-1"))
        await wait_for_async(lambda: len(events.of("r-used", RunConnectionRevoked)) == 1, timeout=10)
        await wait_for_async(lambda: idle(service), timeout=10)
        stored = await stream_events(nats_client, "runs.connection_revoked.*")

    assert sorted(e.run_id for e in stored) == ["r-twice", "r-used"]
    told = events.of("r-used", RunConnectionRevoked)[0]
    assert (told.connection_id, told.provider, told.reason) == ("c-1", "google", "user")


async def test_a_resolve_reported_after_the_revocation_still_reaches_the_run(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    service = make_service(nats_url, database_url)
    async with running(service):
        await publish(nats_client, granted("c-1"))
        await publish(nats_client, requested("r-late", ["google"]))
        await publish(nats_client, revoked("c-1"))
        await wait_for_async(lambda: idle(service), timeout=10)
        await publish(nats_client, resolved("r-late", "c-1"))
        await publish(nats_client, revoked("c-1", when=200))  # a second revocation tells nobody twice
        await wait_for_async(lambda: events.of("r-late", RunConnectionRevoked), timeout=10)
        await wait_for_async(lambda: idle(service), timeout=10)
        stored = await stream_events(nats_client, "runs.connection_revoked.*")
    assert [(e.run_id, e.reason) for e in stored] == [("r-late", "user")]
