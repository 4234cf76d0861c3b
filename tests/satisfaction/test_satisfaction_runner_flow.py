"""A runner's whole path through the real satisfaction service, with the RunnerClient."""

import asyncio

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import TENANT, granted, make_service, publish, resolved, revoked, running

from grantline.common.contract import RunAdmitted, RunHeld
from grantline.common.runner_client import RunnerClient
from grantline.common.runtime import ServiceRuntime


async def _tracked(runtime: ServiceRuntime) -> bool:
    from sqlalchemy import func, select

    from grantline.satisfaction.adapters.tables import run_connections

    async with runtime.sessions() as session:
        return bool(await session.scalar(select(func.count()).select_from(run_connections)))


async def test_held_run_resumes_after_connecting_and_hears_the_revocation(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_service(nats_url, database_url)
    runner = RunnerClient(nats_client, timeout=10)
    async with running(service):
        before = await runner.check(TENANT, "alice", ["gmail"])
        assert not before.is_satisfied and [m.id for m in before.missing] == ["gmail"]
        held = await runner.request_run(TENANT, "r-jit", "alice", "app-1", ["gmail"], trigger="api")
        assert isinstance(held, RunHeld) and held.message == "Missing required connections: gmail"

        await publish(nats_client, granted("c-google"))  # the user connects Google in the consent flow
        admitted = await runner.wait_until_admitted("r-jit")
        assert isinstance(admitted, RunAdmitted) and admitted.resumed and admitted.trigger == "api"
        assert runner.grant("r-jit") == admitted.grant
        assert (await runner.check(TENANT, "alice", ["gmail"])).is_satisfied

        await publish(nats_client, resolved("r-jit", "c-google"))  # the vault's audit record of a resolve
        await wait_for_async(lambda: _tracked(service), timeout=10)
        await publish(nats_client, revoked("c-google"))
        revocations = runner.revocations("r-jit")
        told = await asyncio.wait_for(anext(revocations), timeout=10)
        assert (told.run_id, told.connection_id, told.reason) == ("r-jit", "c-google", "user")
        await runner.finish("r-jit")
    await runner.close()
