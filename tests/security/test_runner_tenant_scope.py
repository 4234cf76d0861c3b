"""A runner identity reaches its own tenants' subjects and nothing else (issue 15, attack 2, NATS side).

Real nats-server with the config rendered from deploy/nats/permissions.yaml, runner-auth answering
the auth callout; each runner is created through runner-auth and connects with its id and secret.
The permissions come from `runner_permissions` (grantline.contract.runner_identities).
"""

import json

import pytest

from grantline.contract.runner_identities import runner_permissions

JS_TIMEOUT = 2.0


@pytest.fixture
async def streams(declared_jetstream) -> None:
    """The streams and consumers, declared as `grantline migrate` does."""


@pytest.mark.parametrize(
    "subject",
    [
        "runs.requested.tenant-b",
        "runs.finished.tenant-b",
        "vault.resolve.tenant-b",
        "satisfaction.check.tenant-b",
        # Minting a connect link for another tenant's user (the just-in-time path).
        "gateway.connect_link.tenant-b",
    ],
)
async def test_runner_cannot_publish_for_another_tenant(runner_auth, connect, subject) -> None:
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    await runner.nc.publish(subject, b"{}")
    await runner.refused(f'Publish to "{subject}"')


async def test_runner_cannot_publish_outcomes_or_events(runner_auth, connect) -> None:
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    for subject in (
        "runs.admitted.tenant-a",
        "connections.granted",
        # A forged step-up mark or sharing change would hold or admit other users' runs.
        "connections.scopes_missing",
        "connections.sharing_changed",
        "audit.token.resolved",
        "vault.exchange",
    ):
        await runner.nc.publish(subject, b"{}")
        await runner.refused(f'Publish to "{subject}"')


@pytest.mark.parametrize(
    "subject",
    [
        "runs.admitted.tenant-b",
        "runs.held.tenant-b",
        "runs.>",
        "runs.requested.tenant-a",
        "connections.>",
        "vault.>",
        "vault.resolve.tenant-a",
        "audit.>",
        ">",
    ],
)
async def test_runner_cannot_subscribe_outside_its_tenant(runner_auth, connect, subject) -> None:
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    await runner.nc.subscribe(subject)
    await runner.refused(f'Subscription to "{subject}"')


async def test_runner_cannot_read_another_runners_inbox(runner_auth, connect) -> None:
    other = await runner_auth.issue(["tenant-a"])
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    for subject in (f"{other.inbox_prefix}.>", "_INBOX.>", "_INBOX.vault.>"):
        await runner.nc.subscribe(subject)
        await runner.refused(f'Subscription to "{subject}"')
    # A runner that keeps nats-py's default inbox prefix cannot receive replies at all.
    careless = await connect(await runner_auth.issue(["tenant-a"]), inbox_prefix="_INBOX")
    with pytest.raises(Exception):
        await careless.nc.request("vault.resolve.tenant-a", b"{}", timeout=1)
    await careless.refused("Subscription to")


async def satisfaction_publishes(satisfaction, subject: str) -> None:
    await satisfaction.nc.jetstream(timeout=JS_TIMEOUT).publish(subject, b'{"run_id": "r-1"}')


async def test_runner_uses_its_own_tenant(runner_auth, connect, streams) -> None:
    issued = await runner_auth.issue(["tenant-a"])
    runner = await connect(issued)
    vault = await connect("vault")
    satisfaction = await connect("satisfaction")

    # Request/reply through its own inbox: the vault answers vault.resolve.<tenant>.
    async def answer(msg) -> None:
        await msg.respond(json.dumps({"subject": msg.subject}).encode())

    await vault.nc.subscribe("vault.resolve.*", queue="vault", cb=answer)
    await vault.nc.flush()
    reply = await runner.nc.request("vault.resolve.tenant-a", b"{}", timeout=5)
    assert json.loads(reply.data) == {"subject": "vault.resolve.tenant-a"}
    assert reply.subject.startswith(issued.inbox_prefix + ".")

    # JetStream publishes of its run announcements and ends: the ack comes back on its inbox.
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    for subject in ("runs.requested.tenant-a", "runs.finished.tenant-a"):
        ack = await js.publish(subject, b"{}")
        assert ack.stream == "RUNS"

    # It follows its runs' outcomes with core subscriptions.
    admitted = await runner.nc.subscribe("runs.admitted.tenant-a")
    for subject in ("runs.admitted.tenant-a", "runs.held.tenant-a", "runs.connection_revoked.tenant-a"):
        subscription = admitted if subject == "runs.admitted.tenant-a" else await runner.nc.subscribe(subject)
        await runner.nc.flush()
        message = await runner.receives(subscription, lambda: satisfaction_publishes(satisfaction, subject))
        assert message.data == b'{"run_id": "r-1"}'
    # Nothing of tenant-b reaches it, even though satisfaction publishes it.
    await satisfaction.nc.jetstream(timeout=JS_TIMEOUT).publish("runs.admitted.tenant-b", b"{}")
    await runner.nc.flush()
    queued = [await admitted.next_msg(timeout=1) for _ in range(admitted.pending_msgs)]
    assert all(message.subject == "runs.admitted.tenant-a" for message in queued)
    assert runner.violations() == [] and vault.violations() == [] and satisfaction.violations() == []


async def test_platform_wide_runner_reaches_every_tenant(runner_auth, connect) -> None:
    runner = await connect(await runner_auth.issue(None))
    for tenant in ("tenant-a", "tenant-b", "9f0c3c4e-5d63-4bb0-9b7e-0d5c8a4f7e21"):
        for subject in ("runs.requested", "runs.finished", "vault.resolve", "satisfaction.check"):
            await runner.nc.publish(f"{subject}.{tenant}", b"{}")
        await runner.nc.subscribe(f"runs.admitted.{tenant}")
    await runner.nc.subscribe("runs.admitted.*")
    await runner.nc.flush()
    assert runner.violations() == []
    # Platform-wide is every tenant's runner subjects, not everything.
    for subject in ("runs.requested.*", "connections.>", "vault.>"):
        await runner.nc.subscribe(subject)
        await runner.refused(f'Subscription to "{subject}"')


async def test_runner_for_two_tenants_reaches_both_and_not_a_third(runner_auth, connect) -> None:
    runner = await connect(await runner_auth.issue(["tenant-a", "tenant-b"]))
    for tenant in ("tenant-a", "tenant-b"):
        await runner.nc.publish(f"vault.resolve.{tenant}", b"{}")
        await runner.nc.subscribe(f"runs.admitted.{tenant}")
    await runner.nc.flush()
    assert runner.violations() == []
    await runner.nc.publish("vault.resolve.tenant-c", b"{}")
    await runner.refused('Publish to "vault.resolve.tenant-c"')
    await runner.nc.subscribe("runs.admitted.tenant-c")
    await runner.refused('Subscription to "runs.admitted.tenant-c"')


def test_permission_template_is_the_documented_one() -> None:
    permissions = runner_permissions("rnr_0123456789abcdef01234567", ["tenant-a"])
    assert permissions.publish == (
        "runs.requested.tenant-a",
        "runs.finished.tenant-a",
        "vault.resolve.tenant-a",
        "vault.report.tenant-a",
        "satisfaction.check.tenant-a",
        "satisfaction.renew_grant.tenant-a",
        "gateway.connect_link.tenant-a",
        # Its own durable consumer of outcomes, and nothing else of JetStream.
        "$JS.API.CONSUMER.INFO.RUNNER_OUTCOMES.rnr_0123456789abcdef01234567",
        "$JS.API.CONSUMER.MSG.NEXT.RUNNER_OUTCOMES.rnr_0123456789abcdef01234567",
        "$JS.ACK.RUNNER_OUTCOMES.rnr_0123456789abcdef01234567.>",
    )
    assert permissions.subscribe == (
        "runs.admitted.tenant-a",
        "runs.held.tenant-a",
        "runs.connection_revoked.tenant-a",
        "_INBOX.rnr_0123456789abcdef01234567.>",
    )
    assert not any(s.startswith("$JS") for s in permissions.subscribe)
    assert all(
        "RUNNER_OUTCOMES.rnr_0123456789abcdef01234567" in s
        for s in permissions.publish
        if s.startswith("$JS")
    )
    platform = runner_permissions("rnr_0123456789abcdef01234567", None)
    assert "vault.resolve.*" in platform.publish and "runs.admitted.*" in platform.subscribe
    with pytest.raises(ValueError):
        runner_permissions("rnr_0123456789abcdef01234567", ["tenant.a"])
    with pytest.raises(ValueError):
        runner_permissions("rnr_0123456789abcdef01234567", [])
