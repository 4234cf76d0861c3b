"""Run admission against the real service: admit, hold, resume exactly once, test runs, bad requirements."""

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import (
    RunEvents,
    granted,
    idle,
    make_service,
    publish,
    requested,
    running,
    stream_events,
)

from grantline.contract import RunAdmitted, RunHeld


async def test_satisfied_run_is_admitted_and_unsatisfied_run_is_held(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    async with running(make_service(nats_url, database_url)):
        await publish(nats_client, granted("c-github", provider="github"))
        await wait_for_async(lambda: _admitted_after_grant(nats_client, events), timeout=10)
        await publish(
            nats_client,
            requested("r-held", ["github", {"type": "category", "id": "email"}], trigger="schedule"),
        )
        held = await wait_for_async(lambda: events.of("r-held"), timeout=10)
    assert len(held) == 1 and isinstance(held[0], RunHeld)
    assert held[0].trigger == "schedule"
    assert [m.id for m in held[0].missing] == ["email"]
    assert held[0].message == "Missing required connections: Email"
    assert [e.id for e in held[0].report] == ["github", "email"]


async def _admitted_after_grant(nc: Client, events: RunEvents) -> bool:
    # The grant may not be mirrored yet: ask again under a fresh run id until one is admitted.
    run_id = f"r-probe-{len(events.events)}"
    await publish(nc, requested(run_id, ["github"]))
    got = await wait_for_async(lambda: events.of(run_id), timeout=10)
    return isinstance(got[0], RunAdmitted) and got[0].resumed is False


async def test_test_runs_skip_the_check(nats_url: str, database_url: str, nats_client: Client) -> None:
    events = RunEvents()
    await events.start(nats_client)
    async with running(make_service(nats_url, database_url)):
        await publish(nats_client, requested("r-test", ["notion"], is_test=True, trigger="manual"))
        got = await wait_for_async(lambda: events.of("r-test"), timeout=10)
    assert isinstance(got[0], RunAdmitted) and got[0].trigger == "manual"
    assert [e.is_satisfied for e in got[0].report] == [False]


async def test_unreadable_requirements_hold_the_run_with_the_reason(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    async with running(make_service(nats_url, database_url)):
        await publish(nats_client, requested("r-bad", [{"type": "specific", "id": "gmail", "scopes": [" "]}]))
        got = await wait_for_async(lambda: events.of("r-bad"), timeout=10)
    assert isinstance(got[0], RunHeld)
    assert got[0].message.startswith("Invalid requirements: ") and "requirements.0" in got[0].message


async def test_held_run_is_admitted_exactly_once_with_a_duplicate_grant_and_two_replicas(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    replicas = [make_service(nats_url, database_url), make_service(nats_url, database_url)]
    async with running(*replicas):
        await publish(nats_client, requested("r-jit", ["gmail"], trigger="manual"))
        await publish(nats_client, requested("r-sched", ["gmail"], trigger="schedule"))
        await publish(nats_client, requested("r-bob", ["gmail"], user="bob"))
        await wait_for_async(lambda: len(events.events) == 3, timeout=10)
        assert all(isinstance(e, RunHeld) for e in events.events)

        grant = granted("c-google", scopes=["gmail.readonly"])
        await publish(nats_client, grant)
        # The same event again under another Nats-Msg-Id: JetStream stores it twice, as a redelivery would.
        await publish(nats_client, grant, msg_id="replayed-grant")
        admitted = await wait_for_async(lambda: events.of("r-jit", RunAdmitted), timeout=10)
        await wait_for_async(lambda: idle(replicas[0]), timeout=10)
        stored = [e for e in await stream_events(nats_client, "runs.admitted.*")]

    assert len(admitted) == 1 and admitted[0].resumed is True and admitted[0].trigger == "manual"
    assert [e.run_id for e in stored] == ["r-jit"]  # one admission; not bob's, not the scheduled tick
    assert events.of("r-jit", RunAdmitted) == admitted


async def test_shared_workspace_grant_resumes_held_runs_of_every_user(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    async with running(make_service(nats_url, database_url)):
        await publish(nats_client, requested("r-a", ["salesforce"], user="alice"))
        await publish(nats_client, requested("r-b", ["salesforce"], user="bob"))
        await wait_for_async(lambda: len(events.events) == 2, timeout=10)
        await publish(
            nats_client, granted("w-sf", user="workspace", provider="salesforce", shared_fallback=True)
        )
        await wait_for_async(lambda: len(events.events) == 4, timeout=10)
    assert {e.run_id for e in events.events if isinstance(e, RunAdmitted)} == {"r-a", "r-b"}
