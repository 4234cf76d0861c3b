"""The runner client over a real NATS: stand-ins answer as the satisfaction service and the vault would."""

import asyncio

import pytest
from fixtures.run_grants import mint_grant
from nats.aio.client import Client
from nats.aio.msg import Msg

from grantline.contract import (
    ErrorCode,
    ErrorReply,
    RunAdmitted,
    RunConnectionRevoked,
    RunHeld,
    RunRequested,
    decode_event,
    encode_message,
)
from grantline.contract.vault import ResolveReply, ResolveRequest
from grantline.runner import ResolveError, RunnerClient
from grantline.runtime.nats.secret_wire import encode_with_secrets

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
            outcome = RunAdmitted(
                tenant_id=TENANT,
                run_id=event.run_id,
                report=[],
                trigger=event.trigger,
                grant=mint_grant(TENANT, event.user_id, ["google", "github"], run_id=event.run_id),
            )
        await _publish(nc, outcome)

    await nc.subscribe("runs.requested.*", cb=on_request)


async def _fake_vault(nc: Client, seen: list[tuple[str, ResolveRequest]]) -> None:
    async def on_resolve(msg: Msg) -> None:
        req = ResolveRequest.model_validate_json(msg.data)
        seen.append((msg.subject, req))
        if req.provider == "github":
            reply: object = ErrorReply.of(ErrorCode.NOT_CONNECTED, "alice has not connected github")
        else:
            reply = ResolveReply(access_token="tok-1", expires_at=None, scopes=["a"], connection_id="c-1")  # type: ignore[arg-type]
        # As the vault does: the resolve reply is the one message that carries a token on the wire.
        await msg.respond(encode_with_secrets(reply))  # type: ignore[arg-type]

    await nc.subscribe("vault.resolve.*", cb=on_resolve)


async def test_request_run_hold_resume_resolve_revocations_finish(nats_client: Client) -> None:
    seen: list[RunRequested] = []
    resolves: list[tuple[str, ResolveRequest]] = []
    await _fake_satisfaction(nats_client, seen)
    await _fake_vault(nats_client, resolves)
    client = RunnerClient(nats_client, timeout=5)

    admitted = await client.request_run(TENANT, "r-1", "alice", "app-1", ["google"], trigger="manual")
    assert isinstance(admitted, RunAdmitted) and admitted.trigger == "manual"
    assert seen[0].run_id == "r-1" and seen[0].user_id == "alice"

    held = await client.request_run(TENANT, "r-2", "alice", "app-1", ["github"])
    assert isinstance(held, RunHeld)
    # Another run's answer is not mistaken for ours; the resumed admission is.
    await _publish(nats_client, RunAdmitted(tenant_id=TENANT, run_id="someone-else", report=[]))
    grant_2 = mint_grant(TENANT, "alice", ["github"], run_id="r-2")
    await _publish(
        nats_client, RunAdmitted(tenant_id=TENANT, run_id="r-2", report=[], resumed=True, grant=grant_2)
    )
    resumed = await client.wait_until_admitted("r-2")
    assert resumed.resumed and client.grant("r-2") == grant_2
    assert grant_2 not in repr(resumed)

    token = await client.resolve("r-1", "google", tool="gmail.send")
    assert token.access_token.get_secret_value() == "tok-1" and "tok-1" not in repr(token)
    # The client presents the run's grant, on the grant's tenant's subject.
    subject, sent = resolves[-1]
    assert subject == f"vault.resolve.{TENANT}"
    assert sent.grant.get_secret_value() == admitted.grant and sent.tool == "gmail.send"
    with pytest.raises(ResolveError) as failure:
        await client.resolve("r-1", "github")
    assert failure.value.code == ErrorCode.NOT_CONNECTED
    # A grant handed over from another process works the same way.
    await client.resolve(grant=grant_2, provider="google")
    assert resolves[-1][1].grant.get_secret_value() == grant_2
    with pytest.raises(KeyError):
        await client.resolve("r-unknown", "google")

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
    finished = await nats_client.jetstream().stream_info("RUNS", subjects_filter="runs.finished.*")
    assert (finished.state.subjects or {}).get(f"runs.finished.{TENANT}") == 1
    await client.close()


async def test_waiting_for_a_run_that_never_answers_times_out(nats_client: Client) -> None:
    client = RunnerClient(nats_client, timeout=0.2)
    with pytest.raises(TimeoutError):
        await client.request_run(TENANT, "r-silent", "alice", "app-1", ["google"])
    with pytest.raises(KeyError):
        await client.wait_until_admitted("never-requested")
    await client.close()
