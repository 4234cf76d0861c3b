"""The batched consumers against the real service: bursts, repeats and a NATS restart."""

import asyncio

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import (
    RunEvents,
    granted,
    idle,
    make_service,
    publish,
    requested,
    resolved,
    revoked,
    running,
    stream_events,
)

from grantline.contract import RunAdmitted, RunConnectionRevoked, RunHeld, RunRequested


async def test_a_burst_of_runs_is_decided_once_each_in_order(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    runtime = make_service(nats_url, database_url)
    async with running(runtime):
        await publish(nats_client, granted("c-github", provider="github"))
        await publish(nats_client, granted("c-bob", user="bob", provider="slack"))
        await wait_for_async(lambda: idle(runtime), timeout=10)
        burst = [
            requested(f"r-{i}", ["github"] if i % 2 else ["slack"], user="alice" if i % 3 else "bob")
            for i in range(60)
        ]
        await asyncio.gather(*(publish(nats_client, event) for event in burst))
        await publish(nats_client, burst[7])  # the same event redelivered (a new message id)
        await wait_for_async(lambda: idle(runtime), timeout=20)
        # A second request under a decided run id: the first answer stands. (Sent only once the burst
        # is decided: the consumer's loops take batches in parallel, so "first" is the first decided.)
        await publish(nats_client, requested("r-5", ["slack"]))
        await wait_for_async(lambda: idle(runtime), timeout=20)
    answers = {run.run_id: run for run in await stream_events(nats_client, "runs.admitted.*")}
    answers |= {run.run_id: run for run in await stream_events(nats_client, "runs.held.*")}
    assert len(await stream_events(nats_client, "runs.admitted.*")) + len(
        await stream_events(nats_client, "runs.held.*")
    ) == len(burst)
    for event in burst:
        alice = event.user_id == "alice"
        github = event.requirements == ["github"]
        expected = RunAdmitted if alice == github else RunHeld
        assert isinstance(answers[event.run_id], expected), event.run_id


async def test_revocations_in_one_batch_reach_each_run_once(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    events = RunEvents()
    await events.start(nats_client)
    runtime = make_service(nats_url, database_url)
    users = [f"u{i}" for i in range(12)]
    async with running(runtime):
        for user in users:
            await publish(nats_client, granted(f"c-{user}", user=user, provider="github"))
            await publish(nats_client, requested(f"run-{user}", ["github"], user=user))
        await wait_for_async(lambda: idle(runtime), timeout=10)
        for user in users:
            await publish(nats_client, resolved(f"run-{user}", f"c-{user}", user=user, provider="github"))
        await wait_for_async(lambda: idle(runtime), timeout=10)
        # Revocations of many users (and one delivered twice) arrive together and share transactions.
        revocations = [revoked(f"c-{user}", user=user, provider="github") for user in users]
        await asyncio.gather(*(publish(nats_client, event) for event in revocations))
        await publish(nats_client, revocations[0], msg_id="again")
        await wait_for_async(lambda: idle(runtime), timeout=10)
    told = await stream_events(nats_client, "runs.connection_revoked.*")
    assert sorted(e.run_id for e in told if isinstance(e, RunConnectionRevoked)) == sorted(
        f"run-{user}" for user in users
    )


async def test_runs_requested_while_nats_restarts_are_all_answered(
    nats_server, nats_url: str, database_url: str, nats_client: Client
) -> None:
    nats_server.require_restart()
    runtime = make_service(nats_url, database_url)
    async with running(runtime):
        await publish(nats_client, granted("c-github", provider="github"))
        await publish(nats_client, requested("r-before", ["github"]))
        await wait_for_async(lambda: idle(runtime), timeout=10)
        nats_server.restart()
        after = requested("r-after", ["github"])
        await wait_for_async(lambda: _published(nats_client, after), timeout=30)
        await wait_for_async(lambda: _answered(nats_client, 2), timeout=30)
    admitted = await stream_events(nats_client, "runs.admitted.*")
    assert sorted(e.run_id for e in admitted) == ["r-after", "r-before"]


async def _published(nc: Client, event: RunRequested) -> bool:
    try:  # JetStream may still be coming back; the same message id makes a retry harmless
        await publish(nc, event)
    except Exception:
        return False
    return True


async def _answered(nc: Client, count: int) -> bool:
    try:
        return len(await stream_events(nc, "runs.admitted.*")) >= count
    except Exception:  # JetStream still coming back
        return False


async def test_runs_requested_while_postgres_restarts_are_all_answered(
    postgres_server, nats_url: str, database_url: str, nats_client: Client
) -> None:
    # The admission loop's psycopg pool and the outbox relay's own connection both lose Postgres here.
    postgres_server.require_restart()
    runtime = make_service(nats_url, database_url)
    async with running(runtime):
        await publish(nats_client, granted("c-github", provider="github"))
        await publish(nats_client, requested("r-before", ["github"]))
        await wait_for_async(lambda: _answered(nats_client, 1), timeout=10)
        await asyncio.to_thread(postgres_server.stop)
        await publish(nats_client, requested("r-during", ["github"]))
        await asyncio.to_thread(postgres_server.start)
        await publish(nats_client, requested("r-after", ["github"]))
        await wait_for_async(lambda: _answered(nats_client, 3), timeout=60)
    admitted = await stream_events(nats_client, "runs.admitted.*")
    assert sorted(e.run_id for e in admitted) == ["r-after", "r-before", "r-during"]
