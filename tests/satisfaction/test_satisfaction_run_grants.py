"""Admissions carry a run grant naming what the run may use; runs asked for on another tenant's subject
are not decided."""

from fixtures.run_grants import VERIFICATION_KEYS
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import TENANT, RunEvents, granted, idle, make_service, publish, requested, running

from grantline.contract import RunAdmitted, RunHeld, encode_message
from grantline.runtime.run_grants import RunGrantVerifier

VERIFY = RunGrantVerifier(VERIFICATION_KEYS, max_lifetime_seconds=86400)


async def test_an_admitted_run_carries_a_grant_for_its_requirements(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    async with running(make_service(nats_url, database_url)):
        await publish(nats_client, granted("c-github", provider="github", scopes=["repo"]))
        await publish(nats_client, granted("c-gmail", provider="google", scopes=["gmail"]))
        needs = [
            {"type": "specific", "id": "github", "scopes": ["repo"]},
            {"type": "category", "id": "email"},
        ]

        async def admitted() -> bool:
            run_id = f"r-{len(events.events)}"
            await publish(nats_client, requested(run_id, needs))
            got = await wait_for_async(lambda: events.of(run_id), timeout=10)
            return isinstance(got[0], RunAdmitted)

        await wait_for_async(admitted, timeout=20)
        outcome = next(e for e in events.events if isinstance(e, RunAdmitted))
        assert isinstance(outcome, RunAdmitted) and outcome.grant not in repr(outcome)
        grant = VERIFY.verify(outcome.grant)
        assert (grant.tenant_id, grant.user_id, grant.run_id, grant.app_id) == (
            TENANT,
            "alice",
            outcome.run_id,
            "app-1",
        )
        assert grant.providers["github"] == ("repo",)
        # A category names every provider in it (any of them may satisfy it), scopes not limited.
        assert grant.covers("google") and grant.providers["google"] == ()
        assert not grant.covers("slack") and not grant.is_test

        # A test run is admitted without connections, with a grant that says so.
        await publish(nats_client, requested("r-test", ["notion"], is_test=True))
        test_run = await wait_for_async(lambda: events.of("r-test"), timeout=10)
        assert isinstance(test_run[0], RunAdmitted)
        assert VERIFY.verify(test_run[0].grant).is_test

        # A held run has no grant; when the user connects, its resumed admission carries one.
        await publish(nats_client, requested("r-held", ["notion"]))
        held = await wait_for_async(lambda: events.of("r-held"), timeout=10)
        assert isinstance(held[0], RunHeld)
        await publish(nats_client, granted("c-notion", provider="notion", when=5))
        resumed = await wait_for_async(lambda: events.of("r-held", RunAdmitted), timeout=10)
        assert isinstance(resumed[0], RunAdmitted) and resumed[0].resumed
        assert VERIFY.verify(resumed[0].grant).providers == {"notion": ()}


async def test_a_run_asked_for_on_another_tenants_subject_is_not_decided(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    # A runner of tenant-b may publish on runs.requested.tenant-b only; a body naming tenant-a there
    # would otherwise get it a grant for tenant-a's user.
    events = RunEvents()
    await events.start(nats_client)
    async with running(runtime := make_service(nats_url, database_url)):
        forged = requested("r-forged", [], user="alice")
        await nats_client.jetstream().publish(
            "runs.requested.tenant-b", encode_message(forged), headers={"Nats-Msg-Id": "forged"}
        )
        await publish(nats_client, requested("r-marker", []))
        await wait_for_async(lambda: events.of("r-marker"), timeout=10)
        await wait_for_async(lambda: idle(runtime), timeout=10)
    assert events.of("r-forged") == []
