"""The permission file on a real nats-server: what each user may and may not do (DESIGN section 5).

The server (`secured_nats`, tests/fixtures/secured_nats.py) runs the config rendered from
`deploy/nats/permissions.yaml`, as `grantline dev`, docker-compose and Kubernetes do; runners are
identities issued by runner-auth through the auth callout (more in tests/security). A refusal is
observed the way nats-py reports it: a `Permissions Violation` through the error callback, which the
server sends before it answers the PING of the following flush (so the check is deterministic).
"""

import asyncio
import uuid

import nats
import pytest
from fixtures.secured_nats import Connected
from fixtures.waiting import wait_for_async
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from nats.js.errors import Error as JetStreamError

from grantline.common.contract import ConnectionGranted, Event
from grantline.common.contract.audit import AuditRecord
from grantline.common.contract.registry import encode_message
from grantline.common.nats.connection import connect_nats, make_broker
from grantline.common.nats.consuming import Delivery, subscribe_events
from grantline.common.nats.permissions import (
    PermissionFile,
    client_environment,
)
from grantline.common.nats.streams import CONNECTIONS, ensure_streams, stream_specs
from grantline.common.settings import ServiceSettings

# A refused JetStream API request gets no answer; do not wait the default 5 s for it.
JS_TIMEOUT = 1.0


@pytest.fixture
def permissions(secured_nats) -> PermissionFile:
    return secured_nats.permissions


@pytest.fixture
def passwords(secured_nats) -> dict[str, str]:
    return secured_nats.passwords


@pytest.fixture
async def runner(runner_auth, connect) -> Connected:
    """A runner identity for tenant-a, issued by runner-auth (there is no static runner user)."""
    return await connect(await runner_auth.issue(["tenant-a"]))


@pytest.fixture
async def streams(connect) -> None:
    """The three streams, declared by a service as its runtime does at start-up."""
    vault = await connect("vault")
    await ensure_streams(vault.nc.jetstream(timeout=JS_TIMEOUT), stream_specs())
    assert vault.violations() == []


def granted(connection_id: str | None = None) -> ConnectionGranted:
    return ConnectionGranted(
        tenant_id="tenant-a",
        connection_id=connection_id or f"conn-{uuid.uuid4().hex[:8]}",
        owner="user:alice",
        provider="google",
        scopes=["email"],
    )


async def stream_messages(conn: Connected, stream: str) -> int:
    info = await conn.nc.jetstream(timeout=JS_TIMEOUT).stream_info(stream)
    return int(info.state.messages)


# -- refused ----------------------------------------------------------------------------------------


async def test_wrong_password_is_refused(secured_nats) -> None:
    # A static user with a wrong password is refused by the server itself (auth_users bypass the
    # callout, so runner-auth is never asked).
    async def quiet(error: Exception) -> None:
        pass

    with pytest.raises(nats.errors.Error, match=r"(?i)authorization violation"):
        await nats.connect(
            secured_nats.url, user="vault", password="not-the-password", allow_reconnect=False, error_cb=quiet
        )


async def test_runner_cannot_serve_vault_resolve(runner) -> None:
    for subject in ("vault.resolve", "vault.resolve.tenant-a", "vault.resolve.*"):
        await runner.nc.subscribe(subject, queue="vault")
        await runner.refused(f'Subscription to "{subject}"')


async def test_runner_cannot_read_connection_events(runner, streams) -> None:
    await runner.nc.subscribe("connections.>")
    await runner.refused('Subscription to "connections.>"')
    # Nor through JetStream: creating (or looking up) a consumer on CONNECTIONS is refused.
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    with pytest.raises((nats.errors.TimeoutError, JetStreamError)):
        await js.pull_subscribe("connections.>", durable="sneaky", stream=CONNECTIONS.name)
    await runner.refused("$JS.API.CONSUMER.INFO.CONNECTIONS.sneaky")


async def test_runner_cannot_publish_connection_events(runner, connect, streams) -> None:
    vault = await connect("vault")
    before = await stream_messages(vault, "CONNECTIONS")
    await runner.nc.publish("connections.granted", encode_message(granted()))
    await runner.refused('Publish to "connections.granted"')
    assert await stream_messages(vault, "CONNECTIONS") == before


async def test_runner_cannot_follow_run_requests_of_others(runner, streams) -> None:
    for subject in ("runs.requested.tenant-a", "runs.requested.*", "runs.>"):
        await runner.nc.subscribe(subject)
        await runner.refused(f'Subscription to "{subject}"')
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    config = ConsumerConfig(name="runner-requests", durable_name="runner-requests")
    with pytest.raises((nats.errors.TimeoutError, JetStreamError)):
        await js.pull_subscribe("runs.requested", durable="runner-requests", stream="RUNS", config=config)
    await runner.refused("$JS.API.CONSUMER")


async def test_no_one_reads_another_users_replies(runner_auth, connect) -> None:
    # The vault's replies to runners carry tokens: only the runner's own inbox receives them.
    issued = await runner_auth.issue(["tenant-a"])
    audit = await connect("audit")
    await audit.nc.subscribe(f"{issued.inbox_prefix}.>")
    await audit.refused(f'Subscription to "{issued.inbox_prefix}.>"')
    # A client that keeps the default inbox prefix cannot receive replies at all.
    careless = await connect(issued, inbox_prefix="_INBOX")
    with pytest.raises(nats.errors.Error):
        await careless.nc.request("vault.resolve.tenant-a", b"{}", timeout=JS_TIMEOUT)
    await careless.refused("Subscription to")


async def test_gateway_cannot_resolve_tokens(connect) -> None:
    gateway = await connect("auth-gateway")
    await gateway.nc.publish("vault.resolve", b"{}")
    await gateway.refused('Publish to "vault.resolve"')


async def test_audit_reader_cannot_publish_anything(connect, streams) -> None:
    reader = await connect("audit-reader")
    vault = await connect("vault")
    before = {name: await stream_messages(vault, name) for name in ("AUDIT", "CONNECTIONS", "RUNS")}
    for subject in ("audit.token.resolved", "connections.revoked", "runs.requested", "vault.resolve"):
        await reader.nc.publish(subject, b"{}")
        await reader.refused(f'Publish to "{subject}"')
    assert {name: await stream_messages(vault, name) for name in before} == before


async def test_audit_reader_cannot_take_the_audit_services_consumer(connect, streams) -> None:
    reader = await connect("audit-reader")
    js = reader.nc.jetstream(timeout=JS_TIMEOUT)
    with pytest.raises((nats.errors.TimeoutError, JetStreamError)):
        await js.pull_subscribe("audit.>", durable="audit-ledger", stream="AUDIT")
    await reader.refused("$JS.API.CONSUMER.INFO.AUDIT.audit-ledger")


# -- allowed ----------------------------------------------------------------------------------------


async def test_vault_serves_resolve_and_runner_gets_the_reply(runner, connect) -> None:
    vault = await connect("vault")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"access_token": "sbx_at_reply"}')

    await vault.nc.subscribe("vault.resolve.*", queue="vault.vault.resolve", cb=answer)
    await vault.nc.flush()
    reply = await runner.nc.request("vault.resolve.tenant-a", b"{}", timeout=5)
    assert reply.data == b'{"access_token": "sbx_at_reply"}'
    assert vault.violations() == [] and runner.violations() == []


async def test_service_consumes_its_stream_through_a_durable_and_acks(
    secured_nats, connect, permissions, passwords, streams
) -> None:
    # The refresher, connected exactly as its runtime connects (settings from the environment).
    settings = ServiceSettings(
        service_name="refresher",
        nats_url=secured_nats.url,
        **{
            key.removeprefix("GRANTLINE_").lower(): value
            for key, value in client_environment(permissions, "refresher", passwords["refresher"]).items()
        },
    )
    nc = await connect_nats(settings)
    broker = make_broker(settings)
    seen: list[Event] = []

    async def handle(event: Event, delivery: Delivery) -> None:
        seen.append(event)

    subscribe_events(
        broker,
        service="refresher",
        durable="refresher-permission-test",
        stream=CONNECTIONS,
        subject="connections.>",
        handler=handle,
    )
    vault = await connect("vault")
    event = granted()
    try:
        await broker.start()
        await vault.nc.jetstream(timeout=JS_TIMEOUT).publish(event.subject(), encode_message(event))
        await wait_for_async(lambda: any(e.id == event.id for e in seen), timeout=10)
        js = nc.jetstream(timeout=JS_TIMEOUT)

        async def acked() -> bool:
            info = await js.consumer_info(CONNECTIONS.name, "refresher-permission-test")
            return info.num_ack_pending == 0 and info.ack_floor.stream_seq >= 1

        await wait_for_async(acked, timeout=10, message="the refresher's ack did not reach the server")
    finally:
        await broker.stop()
        await nc.close()


async def test_runner_follows_its_run_events(runner, connect, streams) -> None:
    satisfaction = await connect("satisfaction")
    # RunnerClient listens to outcomes with core subscriptions (no JetStream consumer of its own).
    live = await runner.nc.subscribe("runs.held.tenant-a")
    await runner.nc.flush()
    await satisfaction.nc.jetstream(timeout=JS_TIMEOUT).publish("runs.held.tenant-a", b'{"run_id": "r-2"}')
    held = await live.next_msg(timeout=5)
    assert held.data == b'{"run_id": "r-2"}'
    # A runner announces and finishes runs.
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    for subject in ("runs.requested.tenant-a", "runs.finished.tenant-a"):
        await js.publish(subject, b"{}")
    assert runner.violations() == [] and satisfaction.violations() == []


async def test_audit_reader_consumes_the_audit_stream(connect, streams) -> None:
    reader = await connect("audit-reader")
    vault = await connect("vault")
    record = AuditRecord(tenant_id="tenant-a", actor="user:alice", action="token.resolved")
    await vault.nc.jetstream(timeout=JS_TIMEOUT).publish(record.subject(), encode_message(record))
    js = reader.nc.jetstream(timeout=JS_TIMEOUT)
    subscription = await js.pull_subscribe("audit.>", durable="audit-export", stream="AUDIT")
    messages = await subscription.fetch(1, timeout=5)
    assert messages[0].subject == "audit.token.resolved"
    await messages[0].ack_sync(timeout=5)
    assert reader.violations() == [] and vault.violations() == []


async def test_each_service_can_declare_the_streams(connect) -> None:
    for user in ("auth-gateway", "vault", "refresher", "satisfaction", "audit", "runner-auth"):
        conn = await connect(user)
        await ensure_streams(conn.nc.jetstream(timeout=JS_TIMEOUT), stream_specs())
        assert conn.violations() == [], user
    await asyncio.sleep(0)
