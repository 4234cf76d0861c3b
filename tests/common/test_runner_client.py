"""The runner client over a real NATS: stand-ins answer as the satisfaction service and the vault would."""

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from grantline.common.contract import (
    ErrorCode,
    ErrorReply,
    RunAdmitted,
    RunConnectionRevoked,
    RunHeld,
    RunRequested,
    decode_event,
    encode_message,
)
from grantline.common.contract.vault import ResolveReply, ResolveRequest
from grantline.common.nats.secret_wire import encode_with_secrets
from grantline.common.runner_client import ResolveError, RunnerClient

TENANT = "tenant-a"


async def _publish(nc: Client, event: object) -> None:
    await nc.jetstream().publish(
        event.subject(), encode_message(event), headers={"Nats-Msg-Id": str(event.id)}
    )  # type: ignore[attr-defined]


async def _fake_satisfaction(nc: Client, seen: list[RunRequested]) -> None:
    """Holds runs that need "github", admits the rest."""

    async def on_request(msg: Msg) -> None:
        event = decode_event(msg.data)
        assert isinstance(event, RunRequested)
        seen.append(event)
        outcome: RunAdmitted | RunHeld
        if "github" in event.requirements:
            outcome = RunHeld(
                tenant_id=TENANT, run_id=event.run_id, report=[], missing=[], message="Missing ..."
            )
        else:
            outcome = RunAdmitted(tenant_id=TENANT, run_id=event.run_id, report=[], trigger=event.trigger)
        await _publish(nc, outcome)

    await nc.subscribe("runs.requested", cb=on_request)


async def _fake_vault(nc: Client) -> None:
    async def on_resolve(msg: Msg) -> None:
        req = ResolveRequest.model_validate_json(msg.data)
        if req.provider == "github":
            reply: object = ErrorReply.of(ErrorCode.NOT_CONNECTED, "alice has not connected github")
        else:
            reply = ResolveReply(access_token="tok-1", expires_at=None, scopes=["a"], connection_id="c-1")  # type: ignore[arg-type]
        # As the vault does: the resolve reply is the one message that carries a token on the wire.
        await msg.respond(encode_with_secrets(reply))  # type: ignore[arg-type]

    await nc.subscribe("vault.resolve", cb=on_resolve)


async def test_request_run_hold_resume_resolve_revocations_finish(nats_client: Client) -> None:
    seen: list[RunRequested] = []
    await _fake_satisfaction(nats_client, seen)
    await _fake_vault(nats_client)
    client = RunnerClient(nats_client, timeout=5)

    admitted = await client.request_run(TENANT, "r-1", "alice", "app-1", ["google"], trigger="manual")
    assert isinstance(admitted, RunAdmitted) and admitted.trigger == "manual"
    assert seen[0].run_id == "r-1" and seen[0].user_id == "alice"

    held = await client.request_run(TENANT, "r-2", "alice", "app-1", ["github"])
    assert isinstance(held, RunHeld)
    # Another run's answer is not mistaken for ours; the resumed admission is.
    await _publish(nats_client, RunAdmitted(tenant_id=TENANT, run_id="someone-else", report=[]))
    await _publish(nats_client, RunAdmitted(tenant_id=TENANT, run_id="r-2", report=[], resumed=True))
    resumed = await client.wait_until_admitted("r-2")
    assert resumed.resumed

    token = await client.resolve(TENANT, "alice", "google", run_id="r-1", tool="gmail.send")
    assert token.access_token.get_secret_value() == "tok-1" and "tok-1" not in repr(token)
    with pytest.raises(ResolveError) as failure:
        await client.resolve(TENANT, "alice", "github", run_id="r-1")
    assert failure.value.code == ErrorCode.NOT_CONNECTED

    # A revocation that arrives before anyone iterates is kept for the run.
    await _publish(
        nats_client,
        RunConnectionRevoked(
            tenant_id=TENANT, run_id="r-1", connection_id="c-1", provider="google", reason="user"
        ),
    )
    iterator = client.revocations("r-1")
    first = await asyncio.wait_for(anext(iterator), timeout=5)
    assert first.connection_id == "c-1"
    await client.finish("r-1")
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(iterator), timeout=5)
    finished = await nats_client.jetstream().stream_info("RUNS", subjects_filter="runs.finished")
    assert (finished.state.subjects or {}).get("runs.finished") == 1
    await client.close()


async def test_waiting_for_a_run_that_never_answers_times_out(nats_client: Client) -> None:
    client = RunnerClient(nats_client, timeout=0.2)
    with pytest.raises(TimeoutError):
        await client.request_run(TENANT, "r-silent", "alice", "app-1", ["google"])
    with pytest.raises(KeyError):
        await client.wait_until_admitted("never-requested")
    await client.close()
