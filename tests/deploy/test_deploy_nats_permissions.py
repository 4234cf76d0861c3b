"""The permission file on a real nats-server: what each user may and may not do (DESIGN section 5).

The server (tests/fixtures/secured_nats.py) runs with the config rendered from
`deploy/nats/permissions.yaml`, as `grantline dev`, docker-compose and Kubernetes do. Every grant of a
service user is used here the way the service uses it; tests/security/test_stream_tampering.py tries
what the file refuses them (managing streams and consumers, reading another's consumer).
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import nats
import pytest
from fixtures.secured_nats import JS_TIMEOUT, Connected, settings_as
from fixtures.waiting import wait_for_async
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from nats.js.errors import Error as JetStreamError

from grantline.cli.migrate import MigrateSettings, NatsDeclarationFailed, declare_nats
from grantline.contract import ConnectionGranted, Event
from grantline.contract.audit import AuditRecord
from grantline.contract.registry import decode_event, encode_message
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import DURABLE_CONSUMERS, REFRESHER_SCHEDULE, ConsumerSpec, consumers_of
from grantline.runtime.nats.declaration import undeclared
from grantline.runtime.nats.permissions import SERVICE_USERS
from grantline.runtime.nats.streams import CONNECTIONS, stream_specs
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.entrypoints.mirror_rebuild import _StreamReader
from grantline.satisfaction.service.mirror_builder import MirrorBuilder

Connect = Callable[..., Awaitable[Connected]]

# Who publishes a message each consumer's filter takes (the owner of the event, per the file).
PUBLISHER_AND_SUBJECT = {
    "connections.>": ("vault", "connections.granted"),
    "runs.requested.*": ("runner", "runs.requested.tenant-a"),
    "runs.finished.*": ("runner", "runs.finished.tenant-a"),
    "audit.token.resolved": ("vault", "audit.token.resolved"),
    "audit.token.refresh_failed": ("vault", "audit.token.refresh_failed"),
    "audit.*.>": ("vault", "audit.token.resolved"),
}


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


@pytest.fixture
async def runner(runner_auth, connect_as: Connect) -> Connected:  # type: ignore[no-untyped-def]
    """A runner identity for tenant-a, issued by runner-auth (there is no static runner user)."""
    return await connect_as(await runner_auth.issue(["tenant-a"]))


# -- refused ----------------------------------------------------------------------------------------


async def test_wrong_password_is_refused(secured_nats) -> None:
    async def quiet(error: Exception) -> None:
        pass

    with pytest.raises(nats.errors.Error, match=r"(?i)authorization violation"):
        await nats.connect(
            secured_nats.url, user="vault", password="not-the-password", allow_reconnect=False, error_cb=quiet
        )


async def test_runner_cannot_serve_vault_resolve(runner: Connected) -> None:
    for subject in ("vault.resolve", "vault.resolve.tenant-a", "vault.resolve.*"):
        await runner.nc.subscribe(subject, queue="vault")
        await runner.refused(f'Subscription to "{subject}"')


async def test_runner_cannot_read_connection_events(runner: Connected, declared_jetstream: None) -> None:
    await runner.nc.subscribe("connections.>")
    await runner.refused('Subscription to "connections.>"')
    # Nor through JetStream: creating (or looking up) a consumer on CONNECTIONS is refused.
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    with pytest.raises((nats.errors.TimeoutError, JetStreamError)):
        await js.pull_subscribe("connections.>", durable="sneaky", stream=CONNECTIONS.name)
    await runner.refused("$JS.API.CONSUMER.INFO.CONNECTIONS.sneaky")


async def test_runner_cannot_publish_connection_events(
    runner: Connected, connect_as: Connect, declared_jetstream: None
) -> None:
    vault = await connect_as("vault")
    before = await stream_messages(vault, "CONNECTIONS")
    await runner.nc.publish("connections.granted", encode_message(granted()))
    await runner.refused('Publish to "connections.granted"')
    assert await stream_messages(vault, "CONNECTIONS") == before


async def test_only_the_vault_announces_a_tenants_own_providers(
    runner: Connected, connect_as: Connect, declared_jetstream: None
) -> None:
    """A forged `connections.provider_defined` would make satisfaction admit runs for a provider the
    tenant never defined (or, as `provider_removed`, hold every run needing one it did)."""
    vault = await connect_as("vault")
    before = await stream_messages(vault, "CONNECTIONS")
    for subject in (
        "connections.provider_defined",
        "connections.provider_removed",
        "connections.provider_enabled",
    ):
        await runner.nc.publish(subject, b"{}")
        await runner.refused(f'Publish to "{subject}"')
        for name in ("auth-gateway", "satisfaction", "refresher"):
            await (await connect_as(name)).publish_refused(subject)
    assert await stream_messages(vault, "CONNECTIONS") == before
    await vault.nc.jetstream(timeout=JS_TIMEOUT).publish("connections.provider_defined", b"{}")
    assert vault.violations() == []


async def test_runner_cannot_follow_run_requests_of_others(
    runner: Connected, declared_jetstream: None
) -> None:
    for subject in ("runs.requested.tenant-a", "runs.requested.*", "runs.>"):
        await runner.nc.subscribe(subject)
        await runner.refused(f'Subscription to "{subject}"')
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    config = ConsumerConfig(name="runner-requests", durable_name="runner-requests")
    with pytest.raises((nats.errors.TimeoutError, JetStreamError)):
        await js.pull_subscribe("runs.requested", durable="runner-requests", stream="RUNS", config=config)
    await runner.refused("$JS.API.CONSUMER")


async def test_no_one_reads_another_users_replies(runner_auth, connect_as: Connect) -> None:
    # The vault's replies to runners carry tokens: only the runner's own inbox receives them.
    issued = await runner_auth.issue(["tenant-a"])
    audit = await connect_as("audit")
    await audit.nc.subscribe(f"{issued.inbox_prefix}.>")
    await audit.refused(f'Subscription to "{issued.inbox_prefix}.>"')
    # A client that keeps the default inbox prefix cannot receive replies at all.
    careless = await connect_as(issued, inbox_prefix="_INBOX")
    with pytest.raises(nats.errors.Error):
        await careless.nc.request("vault.resolve.tenant-a", b"{}", timeout=JS_TIMEOUT)
    await careless.refused("Subscription to")


async def test_gateway_cannot_resolve_tokens(connect_as: Connect) -> None:
    gateway = await connect_as("auth-gateway")
    await gateway.nc.publish("vault.resolve.tenant-a", b"{}")
    await gateway.refused('Publish to "vault.resolve.tenant-a"')


async def test_audit_reader_cannot_publish_anything(connect_as: Connect, declared_jetstream: None) -> None:
    reader = await connect_as("audit-reader")
    vault = await connect_as("vault")
    before = {name: await stream_messages(vault, name) for name in ("AUDIT", "CONNECTIONS", "RUNS")}
    for subject in ("audit.token.resolved", "connections.revoked", "runs.requested.t", "vault.resolve.t"):
        await reader.nc.publish(subject, b"{}")
        await reader.refused(f'Publish to "{subject}"')
    assert {name: await stream_messages(vault, name) for name in before} == before


async def test_audit_reader_cannot_take_the_audit_services_consumer(
    connect_as: Connect, declared_jetstream: None
) -> None:
    reader = await connect_as("audit-reader")
    js = reader.nc.jetstream(timeout=JS_TIMEOUT)
    with pytest.raises((nats.errors.TimeoutError, JetStreamError)):
        await js.pull_subscribe("audit.>", durable="audit-ledger", stream="AUDIT")
    await reader.refused("$JS.API.CONSUMER.INFO.AUDIT.audit-ledger")


async def test_migrate_with_a_service_identity_fails_and_says_it_needs_the_operator(
    secured_nats, nats_permissions, nats_passwords
) -> None:
    settings = MigrateSettings(**settings_as("vault", secured_nats.url, nats_permissions, nats_passwords))
    with pytest.raises(NatsDeclarationFailed, match="GRANTLINE_NATS_USER=operator"):
        await declare_nats(settings)


async def test_the_operator_declares_but_never_reads_or_deletes(
    connect_as: Connect, declared_jetstream: None
) -> None:
    operator = await connect_as("operator")
    for subject in (
        "$JS.API.STREAM.DELETE.AUDIT",
        "$JS.API.STREAM.PURGE.CONNECTIONS",
        "$JS.API.CONSUMER.DELETE.AUDIT.audit-ledger",
        "$JS.API.CONSUMER.MSG.NEXT.RUNS.satisfaction-runs-requested",
        "$JS.API.STREAM.MSG.GET.CONNECTIONS",
    ):
        await operator.publish_refused(subject)
    for subject in ("vault.resolve.*", "connections.>", "runs.>", "audit.>"):
        await operator.nc.subscribe(subject)
        await operator.refused(f'Subscription to "{subject}"')


# -- allowed ----------------------------------------------------------------------------------------


async def test_migrate_declares_streams_and_consumers_as_the_operator_and_updates_them(
    secured_nats, nats_permissions, nats_passwords, connect_as: Connect
) -> None:
    operator = settings_as("operator", secured_nats.url, nats_permissions, nats_passwords)
    await declare_nats(MigrateSettings(**operator))
    # Run again with other tuning: the AUDIT stream and the ledger's consumer are updated in place.
    await declare_nats(
        MigrateSettings(**operator, audit_retention_days=400, audit_ingest_ack_wait_seconds=45)
    )
    vault = await connect_as("vault")
    js = vault.nc.jetstream(timeout=JS_TIMEOUT)
    assert (await js.stream_info("AUDIT")).config.max_age == 400 * 24 * 3600
    conn = await connect_as("audit")
    ledger = await conn.nc.jetstream(timeout=JS_TIMEOUT).consumer_info("AUDIT", "audit-ledger")
    assert ledger.config.ack_wait == 45
    await declare_nats(MigrateSettings(**operator))  # back to the defaults for the other tests
    assert vault.violations() == [] and conn.violations() == []


@pytest.mark.parametrize("user", SERVICE_USERS)
async def test_each_service_sees_that_its_streams_and_consumers_exist(
    user: str, connect_as: Connect, declared_jetstream: None
) -> None:
    # What the runtime checks before it starts and on every readiness probe (STREAM.INFO, CONSUMER.INFO).
    service = await connect_as(user)
    assert (
        await undeclared(service.nc.jetstream(timeout=JS_TIMEOUT), stream_specs(), consumers_of(user)) == []
    )
    await service.nc.flush()
    assert service.violations() == []


@pytest.mark.parametrize("consumer", DURABLE_CONSUMERS, ids=lambda spec: spec.durable)
async def test_each_service_binds_pulls_and_acks_its_own_consumer(
    consumer: ConsumerSpec, connect_as: Connect, declared_jetstream: None, runner_auth
) -> None:  # type: ignore[no-untyped-def]
    # As BatchedConsumer and the audit ledger do: bind (never create), pull, acknowledge.
    owner = await connect_as(consumer.owner)
    publisher_name, subject = PUBLISHER_AND_SUBJECT[consumer.filter_subject]
    # Runners are identities runner-auth issues (tenant-a's here), not a static user.
    publisher = await connect_as(
        await runner_auth.issue(["tenant-a"]) if publisher_name == "runner" else publisher_name
    )
    js = owner.nc.jetstream(timeout=JS_TIMEOUT)
    subscription = await js.pull_subscribe_bind(consumer.durable, stream=consumer.stream.name)
    before = (await js.consumer_info(consumer.stream.name, consumer.durable)).delivered.stream_seq
    await publisher.nc.jetstream(timeout=JS_TIMEOUT).publish(subject, b'{"probe": true}')
    # Earlier tests may have left messages on this consumer: take until the probe arrives.
    while True:
        messages = await subscription.fetch(1, timeout=5)
        await messages[0].ack_sync(timeout=5)
        if messages[0].data == b'{"probe": true}':
            break
    # ack_sync returned, so the server took the owner's ack. Not num_ack_pending == 0: an earlier test's
    # pull request, left waiting on this durable consumer, may hold messages the server delivered to it.
    info = await js.consumer_info(consumer.stream.name, consumer.durable)
    assert info.delivered.stream_seq > before
    assert owner.violations() == [] and publisher.violations() == []


async def test_the_refreshers_batched_consumer_binds_its_consumer_and_acks(
    service_settings, connect_as: Connect, declared_jetstream: None
) -> None:
    # The refresher's runtime, connected exactly as it connects, only binds its consumer (it may not
    # create one) and acknowledges what it handled.
    # No database: the handler only records what it got (the consumer's unit of work is a no-op).
    runtime = ServiceRuntime(service_settings("refresher"), uses_database=False)
    seen: list[Event] = []

    async def handle(_work: object, batch: list[Received]) -> None:
        seen.extend(received.event for received in batch)

    @asynccontextmanager
    async def no_transaction() -> AsyncIterator[None]:
        yield None

    consumer = BatchedConsumer(
        runtime,
        consumer=REFRESHER_SCHEDULE,
        decode=decode_event,
        handle=handle,
        loops=1,
        batch_size=10,
        unit_of_work=no_transaction,
    )
    runtime.on_start(consumer.subscribe)
    runtime.add_background_task(consumer.run)
    vault = await connect_as("vault")
    event = granted()
    try:
        await runtime.start()
        await vault.nc.jetstream(timeout=JS_TIMEOUT).publish(event.subject(), encode_message(event))
        await wait_for_async(lambda: any(e.id == event.id for e in seen), timeout=10)
        refresher = await connect_as("refresher")
        js = refresher.nc.jetstream(timeout=JS_TIMEOUT)

        async def acked() -> bool:
            info = await js.consumer_info(CONNECTIONS.name, REFRESHER_SCHEDULE.durable)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_for_async(acked, timeout=10, message="the refresher's ack did not reach the server")
    finally:
        await runtime.stop()


async def test_satisfaction_replays_connections_for_a_rebuild_and_others_may_not(
    connect_as: Connect, declared_jetstream: None
) -> None:
    vault = await connect_as("vault")
    await vault.nc.jetstream(timeout=JS_TIMEOUT).publish("connections.granted", encode_message(granted()))
    satisfaction = await connect_as("satisfaction")
    reader = _StreamReader(satisfaction.nc.jetstream(timeout=JS_TIMEOUT), MirrorBuilder())
    await reader.read_until_last()
    assert reader.messages >= 1 and satisfaction.violations() == []
    await vault.publish_refused("$JS.API.STREAM.MSG.GET.CONNECTIONS")


async def test_vault_serves_resolve_and_runner_gets_the_reply(runner: Connected, connect_as: Connect) -> None:
    vault = await connect_as("vault")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"access_token": "sbx_at_reply"}')

    await vault.nc.subscribe("vault.resolve.*", queue="vault.vault.resolve", cb=answer)
    await vault.nc.flush()
    reply = await runner.nc.request("vault.resolve.tenant-a", b"{}", timeout=5)
    assert reply.data == b'{"access_token": "sbx_at_reply"}'
    assert vault.violations() == [] and runner.violations() == []


async def test_satisfaction_answers_checks_and_grant_renewals_on_tenant_subjects(
    runner: Connected, connect_as: Connect
) -> None:
    # satisfaction serves satisfaction.check.* and satisfaction.renew_grant.*; a runner of tenant-a
    # asks on tenant-a's subjects only; the gateway may ask for checks but not for grants.
    satisfaction = await connect_as("satisfaction")
    gateway = await connect_as("auth-gateway")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"ok": true}')

    for family in ("satisfaction.check", "satisfaction.renew_grant"):
        await satisfaction.nc.subscribe(f"{family}.*", queue=f"satisfaction.{family}", cb=answer)
    await satisfaction.nc.flush()
    for family in ("satisfaction.check", "satisfaction.renew_grant"):
        reply = await runner.nc.request(f"{family}.tenant-a", b"{}", timeout=5)
        assert reply.data == b'{"ok": true}'
        await runner.nc.publish(f"{family}.tenant-b", b"{}")
        await runner.refused(f'Publish to "{family}.tenant-b"')
    reply = await gateway.nc.request("satisfaction.check.tenant-b", b"{}", timeout=5)
    assert reply.data == b'{"ok": true}'
    await gateway.nc.publish("satisfaction.renew_grant.tenant-b", b"{}")
    await gateway.refused('Publish to "satisfaction.renew_grant.tenant-b"')
    assert satisfaction.violations() == []


async def test_gateway_mints_connect_links_for_satisfaction_and_runners_of_the_tenant(
    runner: Connected, connect_as: Connect
) -> None:
    # The gateway serves gateway.connect_link.*; satisfaction asks for any tenant (a held run's links),
    # a runner of tenant-a for tenant-a only; the vault never asks, and no one else may serve it.
    gateway = await connect_as("auth-gateway")
    satisfaction = await connect_as("satisfaction")
    vault = await connect_as("vault")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"ok": true}')

    await gateway.nc.subscribe("gateway.connect_link.*", queue="auth-gateway.gateway.connect_link", cb=answer)
    await gateway.nc.flush()
    for asking, tenant in ((satisfaction, "tenant-b"), (runner, "tenant-a")):
        reply = await asking.nc.request(f"gateway.connect_link.{tenant}", b"{}", timeout=5)
        assert reply.data == b'{"ok": true}'
    await runner.nc.publish("gateway.connect_link.tenant-b", b"{}")
    await runner.refused('Publish to "gateway.connect_link.tenant-b"')
    await vault.nc.publish("gateway.connect_link.tenant-a", b"{}")
    await vault.refused('Publish to "gateway.connect_link.tenant-a"')
    await satisfaction.nc.subscribe("gateway.connect_link.*")
    await satisfaction.refused('Subscription to "gateway.connect_link.*"')
    assert gateway.violations() == []


async def test_the_notifier_reaches_its_consumers_and_requests_and_nothing_else(connect_as: Connect) -> None:
    # An attacker holding the notifier's NATS credentials (the service that posts to the internet)
    # cannot ask for a token, act on connections or publish events; the gateway may ask it.
    notifier = await connect_as("notifier")
    gateway = await connect_as("auth-gateway")
    forbidden = ("vault.resolve.tenant-a", "vault.revoke", "connections.granted", "runs.admitted.tenant-a")
    for subject in forbidden:
        await notifier.nc.publish(subject, b"{}")
        await notifier.refused(f'Publish to "{subject}"')

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"ok": true}')

    await notifier.nc.subscribe("notifier.endpoints.*", queue="notifier.endpoints", cb=answer)
    await notifier.nc.flush()
    reply = await gateway.nc.request("notifier.endpoints.list", b"{}", timeout=5)
    assert reply.data == b'{"ok": true}'
    assert gateway.violations() == []


async def test_runner_follows_its_run_events(
    runner: Connected, connect_as: Connect, declared_jetstream: None
) -> None:
    satisfaction = await connect_as("satisfaction")
    # RunnerClient listens to outcomes with core subscriptions (no JetStream consumer of its own).
    live = await runner.nc.subscribe("runs.held.tenant-a")
    await runner.nc.flush()
    held = await runner.receives(
        live,
        lambda: satisfaction.nc.jetstream(timeout=JS_TIMEOUT).publish(
            "runs.held.tenant-a", b'{"run_id": "r-2"}'
        ),
    )
    assert held.data == b'{"run_id": "r-2"}'
    # A runner announces and finishes runs.
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    for subject in ("runs.requested.tenant-a", "runs.finished.tenant-a"):
        await js.publish(subject, b"{}")
    assert runner.violations() == [] and satisfaction.violations() == []


async def test_audit_reader_consumes_the_audit_stream(connect_as: Connect, declared_jetstream: None) -> None:
    reader = await connect_as("audit-reader")
    vault = await connect_as("vault")
    record = AuditRecord(tenant_id="tenant-a", actor="user:alice", action="token.resolved")
    await vault.nc.jetstream(timeout=JS_TIMEOUT).publish(record.subject(), encode_message(record))
    js = reader.nc.jetstream(timeout=JS_TIMEOUT)
    subscription = await js.pull_subscribe("audit.>", durable="audit-export", stream="AUDIT")
    # Earlier tests on the session's server may have left records of their own in the stream.
    found = None
    while found is None:
        for message in await subscription.fetch(100, timeout=5):
            await message.ack_sync(timeout=5)
            if message.subject == "audit.token.resolved" and str(record.id).encode() in message.data:
                found = message
    assert found.subject == "audit.token.resolved"
    assert reader.violations() == [] and vault.violations() == []
