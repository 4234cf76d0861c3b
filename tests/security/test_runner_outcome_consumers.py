"""Each runner identity's durable consumer of outcomes (issue 20 item 2), attacked.

runner-auth declares one consumer per runner on RUNNER_OUTCOMES (a stream that copies the outcomes
runners already receive from RUNS), named after the runner id and filtered to its tenants, when the
runner connects; it deletes it when the runner is revoked. Played with real credentials on the real
nats-server with the real permission file:

- a runner may look up, pull from and acknowledge its own consumer, and nothing else of JetStream:
  not another runner's consumer (of its tenant or another), not a new consumer, not a deletion;
- its consumer holds its tenants' outcomes only;
- runner-auth may create and delete consumers on RUNNER_OUTCOMES and nowhere else: not on RUNS,
  CONNECTIONS or AUDIT (satisfaction's or the vault's consumers), not the stream itself, and it cannot
  pull or acknowledge a runner's messages;
- a revoked runner's consumer is deleted.
"""

from __future__ import annotations

import httpx
import pytest
from fixtures.waiting import wait_for_async

from grantline.contract import RunAdmitted, RunConnectionRevoked, encode_message
from grantline.contract.runner_identities import RUNNER_OUTCOMES_STREAM, runner_outcome_subjects

JS_TIMEOUT = 2.0


async def _consumer_names(secured_nats) -> set[str]:  # type: ignore[no-untyped-def]
    """The consumers of RUNNER_OUTCOMES, from the server's monitoring endpoint (not a NATS user)."""
    async with httpx.AsyncClient(timeout=5) as client:
        jsz = (
            await client.get(f"{secured_nats.server.monitor_url}/jsz", params={"consumers": "true"})
        ).json()
    names: set[str] = set()
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if stream["name"] == RUNNER_OUTCOMES_STREAM:
                names |= {consumer["name"] for consumer in stream.get("consumer_detail") or []}
    return names


async def _publish_as_satisfaction(connect, event) -> None:  # type: ignore[no-untyped-def]
    satisfaction = await connect("satisfaction")
    await satisfaction.nc.jetstream(timeout=5).publish(
        event.subject(), encode_message(event), headers={"Nats-Msg-Id": str(event.id)}
    )


async def test_a_runners_consumer_is_its_own_and_holds_its_tenants_outcomes_only(
    runner_auth, connect, declared_jetstream
) -> None:
    issued = await runner_auth.issue(["tenant-a"])
    runner = await connect(issued)
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    info = await js.consumer_info(RUNNER_OUTCOMES_STREAM, issued.runner_id)  # declared at connect
    assert sorted(info.config.filter_subjects or []) == sorted(runner_outcome_subjects(["tenant-a"]))

    for tenant in ("tenant-b", "tenant-a"):
        await _publish_as_satisfaction(
            connect,
            RunConnectionRevoked(
                tenant_id=tenant,
                run_id=f"run-{tenant}",
                connection_id="c-1",
                provider="google",
                reason="user",
            ),
        )
    subscription = await js.pull_subscribe_bind(issued.runner_id, stream=RUNNER_OUTCOMES_STREAM)
    messages = await subscription.fetch(10, timeout=5)
    assert [m.subject for m in messages] == ["runs.connection_revoked.tenant-a"]
    await messages[0].ack_sync(timeout=5)
    assert runner.violations() == []


async def test_a_runner_cannot_read_or_manage_another_runners_consumer(
    runner_auth, connect, declared_jetstream
) -> None:
    neighbour = await runner_auth.issue(["tenant-a"])  # same tenant
    stranger = await runner_auth.issue(["tenant-b"])
    for other in (neighbour, stranger):
        await connect(other)  # their consumers now exist
    await _publish_as_satisfaction(connect, RunAdmitted(tenant_id="tenant-a", run_id="run-n", report=[]))
    attacker_identity = await runner_auth.issue(["tenant-a"])
    attacker = await connect(attacker_identity)
    for other in (neighbour, stranger):
        for subject in (
            f"$JS.API.CONSUMER.MSG.NEXT.{RUNNER_OUTCOMES_STREAM}.{other.runner_id}",
            f"$JS.API.CONSUMER.INFO.{RUNNER_OUTCOMES_STREAM}.{other.runner_id}",
            f"$JS.API.CONSUMER.DELETE.{RUNNER_OUTCOMES_STREAM}.{other.runner_id}",
            f"$JS.API.CONSUMER.CREATE.{RUNNER_OUTCOMES_STREAM}.{other.runner_id}",
            f"$JS.ACK.{RUNNER_OUTCOMES_STREAM}.{other.runner_id}.1.1.1.1.0",
        ):
            await attacker.publish_refused(subject)
    # Nor may it widen, replace or delete its own, or make another one.
    own = attacker_identity.runner_id
    for subject in (
        f"$JS.API.CONSUMER.CREATE.{RUNNER_OUTCOMES_STREAM}.{own}",
        f"$JS.API.CONSUMER.CREATE.{RUNNER_OUTCOMES_STREAM}.{own}.runs.admitted.tenant-b",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{RUNNER_OUTCOMES_STREAM}.{own}",
        f"$JS.API.CONSUMER.DELETE.{RUNNER_OUTCOMES_STREAM}.{own}",
        f"$JS.API.CONSUMER.CREATE.{RUNNER_OUTCOMES_STREAM}.mine",
        f"$JS.API.STREAM.INFO.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.STREAM.MSG.GET.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.DIRECT.GET.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.STREAM.PURGE.{RUNNER_OUTCOMES_STREAM}",
    ):
        await attacker.publish_refused(subject)
    # The neighbour's message is still waiting for the neighbour.
    neighbour_nc = (await connect(neighbour)).nc
    waiting = await neighbour_nc.jetstream(timeout=JS_TIMEOUT).consumer_info(
        RUNNER_OUTCOMES_STREAM, neighbour.runner_id
    )
    assert waiting.num_pending >= 1


@pytest.mark.parametrize(
    "subject",
    [
        # Another stream's consumers: satisfaction's, the vault's, the audit ledger's.
        "$JS.API.CONSUMER.CREATE.RUNS.satisfaction-runs-requested",
        "$JS.API.CONSUMER.CREATE.RUNS.runner-x.runs.requested.tenant-a",
        "$JS.API.CONSUMER.DURABLE.CREATE.RUNS.satisfaction-runs-requested",
        "$JS.API.CONSUMER.DELETE.RUNS.satisfaction-runs-requested",
        "$JS.API.CONSUMER.DELETE.RUNS.vault-runs-finished",
        "$JS.API.CONSUMER.CREATE.CONNECTIONS.rnr_0123456789abcdef01234567",
        "$JS.API.CONSUMER.CREATE.AUDIT.rnr_0123456789abcdef01234567",
        "$JS.API.CONSUMER.DELETE.AUDIT.audit-ledger",
        # The outcome stream itself, and the messages in it.
        f"$JS.API.STREAM.UPDATE.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.STREAM.DELETE.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.STREAM.PURGE.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.STREAM.MSG.GET.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.DIRECT.GET.{RUNNER_OUTCOMES_STREAM}",
        f"$JS.API.CONSUMER.MSG.NEXT.{RUNNER_OUTCOMES_STREAM}.rnr_0123456789abcdef01234567",
        f"$JS.API.CONSUMER.INFO.{RUNNER_OUTCOMES_STREAM}.rnr_0123456789abcdef01234567",
        f"$JS.ACK.{RUNNER_OUTCOMES_STREAM}.rnr_0123456789abcdef01234567.1.1.1.1.0",
    ],
)
async def test_runner_auth_manages_runner_consumers_and_nothing_else(
    connect, declared_jetstream, subject
) -> None:
    runner_auth_user = await connect("runner-auth")
    await runner_auth_user.publish_refused(subject)


async def test_revoking_a_runner_deletes_its_consumer(
    runner_auth, connect, secured_nats, declared_jetstream
) -> None:
    issued = await runner_auth.issue(["tenant-a"])
    await connect(issued)
    assert issued.runner_id in await _consumer_names(secured_nats)
    await runner_auth.revoke(issued.runner_id)

    async def deleted() -> bool:
        return issued.runner_id not in await _consumer_names(secured_nats)

    await wait_for_async(deleted, timeout=15, message="the revoked runner's consumer is still there")
