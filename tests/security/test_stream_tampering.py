"""Attack 1 (issue 15): a service's NATS user tampers with the streams to read tokens or wipe history.

Connected as `auth-gateway`, an attacker who could update a stream would add `_INBOX.runner.>` to its
subjects, let a runner resolve, and read the reply (token included) through a consumer of their own;
the same grant would let any service shrink retention, purge or delete AUDIT and CONNECTIONS. Each
step is tried here with every service's real credentials on a real nats-server running the real
permission file, and each is refused: only `grantline migrate` (the operator) declares streams and
consumers, and a service reads only the consumers it owns. The allowed paths are in
tests/deploy/test_deploy_nats_permissions.py.
"""

import json

import nats
import pytest
from fixtures.secured_nats import JS_TIMEOUT, Connected
from nats.js.api import StreamConfig

from grantline.contract import ConnectionGranted
from grantline.contract.audit import AuditRecord
from grantline.contract.registry import encode_message
from grantline.runtime.nats.consumers import DURABLE_CONSUMERS
from grantline.runtime.nats.permissions import SERVICE_USERS
from grantline.runtime.nats.streams import stream_specs

STREAMS = [spec.name for spec in stream_specs()]
# Every runner identity's reply inbox is _INBOX.<runner id>: capturing all inboxes takes them all.
STOLEN_REPLIES = "_INBOX.>"


async def _state(inspector: Connected) -> dict[str, object]:
    """What tampering would change: each stream's subjects, retention, message count and consumers."""
    js = inspector.nc.jetstream(timeout=JS_TIMEOUT)
    state: dict[str, object] = {}
    for name in STREAMS:
        info = await js.stream_info(name)
        state[name] = (sorted(info.config.subjects or []), info.config.max_age, info.state.messages)
    return state


async def _consumers(owner_connections: dict[str, Connected]) -> set[str]:
    """The declared consumers that still exist, each looked up by its owner."""
    present = set()
    for spec in DURABLE_CONSUMERS:
        js = owner_connections[spec.owner].nc.jetstream(timeout=JS_TIMEOUT)
        try:
            await js.consumer_info(spec.stream.name, spec.durable)
        except nats.js.errors.NotFoundError:
            continue
        present.add(spec.durable)
    return present


@pytest.fixture
async def history(connect_as, declared_jetstream) -> None:  # type: ignore[no-untyped-def]
    """Something worth wiping: a connection event and an audit record."""
    vault = await connect_as("vault")
    js = vault.nc.jetstream(timeout=JS_TIMEOUT)
    event = ConnectionGranted(
        tenant_id="tenant-a", connection_id="conn-1", owner="user:alice", provider="google", scopes=["email"]
    )
    await js.publish(event.subject(), encode_message(event))
    record = AuditRecord(tenant_id="tenant-a", actor="user:alice", action="token.resolved")
    await js.publish(record.subject(), encode_message(record))


@pytest.mark.parametrize("user", SERVICE_USERS)
async def test_no_service_can_tamper_with_streams_or_read_another_services_consumer(
    user: str, connect_as, history: None
) -> None:  # type: ignore[no-untyped-def]
    attacker = await connect_as(user)
    owners = {spec.owner: await connect_as(spec.owner) for spec in DURABLE_CONSUMERS}
    inspector = await connect_as("vault")  # looks the streams up (STREAM.INFO) to see nothing changed
    before, consumers_before = await _state(inspector), await _consumers(owners)

    # The attack as written: widen RUNS to capture the runners' reply inboxes (the vault's tokens).
    widened = StreamConfig(name="RUNS", subjects=["runs.>", STOLEN_REPLIES])
    with pytest.raises(nats.errors.TimeoutError):  # a refused API request is never answered
        await attacker.nc.jetstream(timeout=JS_TIMEOUT).update_stream(widened)
    await attacker.refused('Publish to "$JS.API.STREAM.UPDATE.RUNS"')

    capture = json.dumps({"name": "CAPTURE", "subjects": [STOLEN_REPLIES]}).encode()
    await attacker.publish_refused("$JS.API.STREAM.CREATE.CAPTURE", capture)
    for stream in STREAMS:
        # Update (add a subject, shrink retention), delete, purge, delete single messages.
        shrunk = json.dumps({"name": stream, "subjects": [STOLEN_REPLIES], "max_age": 1}).encode()
        await attacker.publish_refused(f"$JS.API.STREAM.UPDATE.{stream}", shrunk)
        await attacker.publish_refused(f"$JS.API.STREAM.DELETE.{stream}")
        await attacker.publish_refused(f"$JS.API.STREAM.PURGE.{stream}")
        await attacker.publish_refused(f"$JS.API.STREAM.MSG.DELETE.{stream}", b'{"seq": 1}')
        # A consumer of one's own on the stream, whatever the API form: ephemeral, named, durable.
        await attacker.publish_refused(f"$JS.API.CONSUMER.CREATE.{stream}")
        await attacker.publish_refused(f"$JS.API.CONSUMER.CREATE.{stream}.stolen.{STOLEN_REPLIES}")
        await attacker.publish_refused(f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.stolen")
    for spec in DURABLE_CONSUMERS:
        await attacker.publish_refused(f"$JS.API.CONSUMER.DELETE.{spec.stream.name}.{spec.durable}")
        if spec.owner == user:
            continue
        # Another service's consumer: neither pulled from, acknowledged nor looked up.
        await attacker.publish_refused(f"$JS.API.CONSUMER.MSG.NEXT.{spec.stream.name}.{spec.durable}")
        await attacker.publish_refused(f"$JS.ACK.{spec.stream.name}.{spec.durable}.1.1.1.1.0", b"+ACK")
        await attacker.publish_refused(f"$JS.API.CONSUMER.INFO.{spec.stream.name}.{spec.durable}")

    assert await _state(inspector) == before
    assert await _consumers(owners) == consumers_before == {spec.durable for spec in DURABLE_CONSUMERS}


async def test_a_runners_resolve_reply_stays_off_every_stream(connect_as, history: None, runner_auth) -> None:  # type: ignore[no-untyped-def]
    # After the gateway's attempt, a runner resolves: the reply reaches the runner and no stream.
    gateway = await connect_as("auth-gateway")
    await gateway.publish_refused(
        "$JS.API.STREAM.UPDATE.RUNS",
        json.dumps({"name": "RUNS", "subjects": ["runs.>", STOLEN_REPLIES]}).encode(),
    )
    vault = await connect_as("vault")

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(b'{"access_token": "sbx_at_not_for_the_gateway"}')

    await vault.nc.subscribe("vault.resolve.*", queue="vault.vault.resolve", cb=answer)
    await vault.nc.flush()
    before = await _state(vault)
    runner = await connect_as(await runner_auth.issue(["tenant-a"]))
    reply = await runner.nc.request("vault.resolve.tenant-a", b"{}", timeout=5)
    assert b"sbx_at_not_for_the_gateway" in reply.data
    assert await _state(vault) == before  # nothing was captured (same subjects, same message counts)
    await gateway.nc.subscribe(STOLEN_REPLIES)
    await gateway.refused(f'Subscription to "{STOLEN_REPLIES}"')
