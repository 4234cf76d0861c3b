"""NATS restarted while a run is in flight (issue 20 item 2): nothing the run must hear is lost.

The real nats-server with the real permission file is stopped and started again (its JetStream store
kept) while a runner, connected with the SDK as a runner identity of runner-auth, has an admitted run.
The runner reconnects later than the services (a longer reconnect wait, as a runner on a far network
would); meanwhile a `runs.connection_revoked` for its run is published. The runner's core
subscriptions were not there to hear it; its durable consumer on RUNNER_OUTCOMES was, and the
revocation reaches the run after the reconnect. A resolve made during the gap fails cleanly
(`RequestFailed`) when its time is up, and one given longer is sent again until the vault answers.

The satisfaction service is the real one (it admits the run); the vault is played by a responder
connected as the `vault` user.
"""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from fixtures.secured_nats import settings_as
from fixtures.waiting import wait_for_async
from nats.aio.msg import Msg
from satisfaction.satisfaction_harness import make_service, running

from grantline.contract import RunAdmitted, RunConnectionRevoked, encode_message
from grantline.contract.runner_identities import RUNNER_OUTCOMES_STREAM
from grantline.contract.vault import ResolveReply, ResolveRequest
from grantline.contract.wire import RequestFailed, encode_with_secrets
from grantline.runner import RunnerClient
from grantline.runtime.service_runtime import ServiceRuntime

TENANT = "tenant-a"
# The runner waits this long between reconnect attempts: the window in which it is away while NATS
# is back. Long enough that publishing and a short resolve fit in it on a busy machine.
RUNNER_RECONNECT_WAIT = 8.0

pytestmark = pytest.mark.timeout(120)


async def _service_connection(secured_nats, user: str) -> nats.aio.client.Client:  # type: ignore[no-untyped-def]
    return await nats.connect(
        secured_nats.url,
        user=user,
        password=secured_nats.passwords[user],
        inbox_prefix=secured_nats.permissions.user(user).inbox_prefix,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )


def _satisfaction(secured_nats, database_url: str) -> ServiceRuntime:  # type: ignore[no-untyped-def]
    """The real satisfaction service, as its own NATS user on the secured server."""
    identity = settings_as("satisfaction", secured_nats.url, secured_nats.permissions, secured_nats.passwords)
    identity.pop("nats_url")
    identity.pop("environment")
    return make_service(secured_nats.url, database_url, **identity)


async def test_a_revocation_published_while_the_runner_reconnects_reaches_the_run(
    secured_nats, declared_jetstream, runner_auth, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    satisfaction = _satisfaction(secured_nats, database_url)
    issued = await runner_auth.issue([TENANT])
    resolves: list[ResolveRequest] = []

    async def answer_resolve(msg: Msg) -> None:
        request = ResolveRequest.model_validate_json(msg.data)
        resolves.append(request)
        reply = ResolveReply(
            access_token="tok-after-restart",
            expires_at=None,
            scopes=[],
            connection_id="c-1",  # type: ignore[arg-type]
        )
        await msg.respond(encode_with_secrets(reply))

    vault = await _service_connection(secured_nats, "vault")
    await vault.subscribe("vault.resolve.*", cb=answer_resolve)
    publisher = await _service_connection(secured_nats, "satisfaction")
    runner = await RunnerClient.connect(
        secured_nats.url,
        issued.runner_id,
        issued.secret,
        timeout=30,
        reconnect_time_wait=RUNNER_RECONNECT_WAIT,
        max_reconnect_attempts=-1,
    )
    runner_nc = runner._nc  # the connection, to see when it is away
    # The control: what core subscriptions alone (the client before issue 20) would have heard.
    heard_live: list[bytes] = []
    control = await nats.connect(
        secured_nats.url,
        user=issued.runner_id,
        password=issued.secret,
        inbox_prefix=issued.inbox_prefix,
        reconnect_time_wait=RUNNER_RECONNECT_WAIT,
        max_reconnect_attempts=-1,
    )

    async def hear(msg: Msg) -> None:
        heard_live.append(msg.data)

    await control.subscribe(f"runs.connection_revoked.{TENANT}", cb=hear)
    try:
        async with running(satisfaction):
            run_id = f"run-restart-{time.monotonic_ns()}"
            admitted = await runner.request_run(TENANT, run_id, "alice", "app-1", ["google"], is_test=True)
            assert isinstance(admitted, RunAdmitted)
            grant = runner.grant(run_id)
            revocations = runner.revocations(run_id)

            await asyncio.to_thread(secured_nats.server.restart)
            # NATS is back; the services are (or soon will be) reconnected, the runner is not.
            revoked = RunConnectionRevoked(
                tenant_id=TENANT, run_id=run_id, connection_id="c-1", provider="google", reason="user"
            )
            await publisher.jetstream(timeout=10).publish(
                revoked.subject(), encode_message(revoked), headers={"Nats-Msg-Id": str(revoked.id)}
            )
            assert not runner_nc.is_connected, "the runner reconnected before the revocation: no gap tested"
            assert not control.is_connected

            # A resolve while away: it fails cleanly once its time is up ...
            with pytest.raises(RequestFailed):
                await runner.resolve(grant=grant, provider="google", timeout=1)
            assert not runner_nc.is_connected
            # ... and one given longer is sent again until the vault answers, after the reconnect.
            token = await runner.resolve(grant=grant, provider="google", timeout=30)
            assert token.access_token.get_secret_value() == "tok-after-restart"
            assert runner_nc.is_connected and resolves

            told = await asyncio.wait_for(anext(revocations), timeout=30)
            assert (told.run_id, told.connection_id, told.id) == (run_id, "c-1", revoked.id)
            await runner.finish(run_id)
            # Heard once, though it may arrive both live and from the consumer.
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(anext(revocations), timeout=5)
            # Core subscriptions alone lost it: the control, back too, heard nothing of it.
            await wait_for_async(lambda: control.is_connected, timeout=30)
            await control.flush()
            assert not any(run_id.encode() in data for data in heard_live)
    finally:
        await runner.close()
        await control.close()
        await vault.close()
        await publisher.close()


async def test_an_event_heard_live_and_from_the_consumer_reaches_the_run_once(
    secured_nats, declared_jetstream, runner_auth, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    satisfaction = _satisfaction(secured_nats, database_url)
    issued = await runner_auth.issue([TENANT])
    publisher = await _service_connection(secured_nats, "satisfaction")
    runner = await RunnerClient.connect(secured_nats.url, issued.runner_id, issued.secret, timeout=30)
    try:
        async with running(satisfaction):
            run_id = f"run-twice-{time.monotonic_ns()}"
            await runner.request_run(TENANT, run_id, "alice", "app-1", ["google"], is_test=True)
            revocations = runner.revocations(run_id)
            revoked = RunConnectionRevoked(
                tenant_id=TENANT, run_id=run_id, connection_id="c-2", provider="google", reason="user"
            )
            await publisher.jetstream(timeout=10).publish(
                revoked.subject(), encode_message(revoked), headers={"Nats-Msg-Id": str(revoked.id)}
            )
            told = await asyncio.wait_for(anext(revocations), timeout=30)
            assert told.id == revoked.id

            # The copies from the consumer (the admission, the revocation) were pulled and acknowledged
            # too (the consumer is new: it holds this run's events only) ...
            js = runner._nc.jetstream(timeout=5)

            async def consumer_drained() -> bool:
                info = await js.consumer_info(RUNNER_OUTCOMES_STREAM, issued.runner_id)
                pulled = (info.delivered.consumer_seq or 0) >= 2
                return pulled and info.num_pending == 0 and info.num_ack_pending == 0

            await wait_for_async(consumer_drained, timeout=30)
            # ... and the run heard the revocation once.
            await runner.finish(run_id)
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(anext(revocations), timeout=5)
    finally:
        await runner.close()
        await publisher.close()
