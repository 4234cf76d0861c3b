"""A runner's whole path through the real satisfaction service, with the RunnerClient."""

import asyncio

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from pydantic import SecretStr
from satisfaction_harness import TENANT, granted, make_service, publish, resolved, revoked, running

from grantline.contract import RunAdmitted, RunHeld
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.run_grants import unverified_claims
from grantline.contract.satisfaction import RenewGrantReply, RenewGrantRequest
from grantline.runner import RunnerClient
from grantline.runtime.nats.secret_wire import request_with_secrets
from grantline.runtime.service_runtime import ServiceRuntime


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
        # A run in progress gets a fresh grant for the same run, user and providers.
        renewed = await runner.renew_grant("r-jit")
        assert renewed != admitted.grant and runner.grant("r-jit") == renewed
        old, new = unverified_claims(admitted.grant), unverified_claims(renewed)
        assert {k: new[k] for k in ("tid", "sub", "run", "app", "prv")} == {
            k: old[k] for k in ("tid", "sub", "run", "app", "prv")
        }

        await publish(nats_client, resolved("r-jit", "c-google"))  # the vault's audit record of a resolve
        await wait_for_async(lambda: _tracked(service), timeout=10)
        await publish(nats_client, revoked("c-google"))
        revocations = runner.revocations("r-jit")
        told = await asyncio.wait_for(anext(revocations), timeout=10)
        assert (told.run_id, told.connection_id, told.reason) == ("r-jit", "c-google", "user")
        await runner.finish("r-jit")
        # Once the run has finished, its (still unexpired) grant is not renewed.
        await wait_for_async(lambda: _renewal_refused(nats_client, renewed), timeout=10)
    await runner.close()


async def _renewal_refused(nc: Client, grant: str) -> bool:
    request = RenewGrantRequest(grant=SecretStr(grant))
    reply = await request_with_secrets(nc, f"satisfaction.renew_grant.{TENANT}", request, RenewGrantReply)
    return (
        isinstance(reply, ErrorReply)
        and reply.error.code == ErrorCode.FORBIDDEN
        and "finished" in reply.error.message
    )
