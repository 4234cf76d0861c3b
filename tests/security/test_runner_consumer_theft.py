"""Attack 4 of issue 15: a runner takes and acks other tenants' runs.requested from satisfaction's
durable consumer on RUNS, which are then never admitted or held.

A runner identity has nothing on `$JS.API.>` or `$JS.ACK.>`: it can neither pull from nor ack
satisfaction's consumer, nor create or look up any consumer. Satisfaction still gets every message.
"""

import pytest
from nats.js.api import ConsumerConfig
from nats.js.errors import Error as JetStreamError

JS_TIMEOUT = 1.0
SATISFACTION_DURABLE = "satisfaction-runs-requested"


@pytest.fixture
async def satisfaction_consumer(connect, runner_auth, declared_jetstream):
    """Satisfaction's real consumer on RUNS (declared by migrate), drained, with a runs.requested.tenant-b
    (from tenant-b's runner) waiting on it."""
    durable = SATISFACTION_DURABLE
    satisfaction = await connect("satisfaction")
    js = satisfaction.nc.jetstream(timeout=5)
    subscription = await js.pull_subscribe_bind(durable, stream="RUNS")
    # Streams live as long as the session's server: take what earlier tests left on the consumer.
    while True:
        try:
            for message in await subscription.fetch(50, timeout=0.3):
                await message.ack_sync(timeout=5)
        except TimeoutError:
            break
    runner_of_b = await connect(await runner_auth.issue(["tenant-b"]))
    await runner_of_b.nc.jetstream(timeout=5).publish("runs.requested.tenant-b", b'{"run_id": "run-of-b"}')
    return satisfaction, subscription, durable


async def pending(satisfaction, durable: str) -> tuple[int, int]:
    info = await satisfaction.nc.jetstream(timeout=5).consumer_info("RUNS", durable)
    return info.num_pending, info.num_ack_pending


async def test_runner_cannot_pull_from_satisfactions_consumer(
    runner_auth, connect, satisfaction_consumer
) -> None:
    satisfaction, subscription, durable = satisfaction_consumer
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    # The pull request itself, as nats-py's fetch sends it, and the JetStream way.
    await runner.nc.publish(
        f"$JS.API.CONSUMER.MSG.NEXT.RUNS.{durable}", b'{"batch": 10, "expires": 500000000}', reply="_INBOX.x"
    )
    await runner.refused(f'Publish to "$JS.API.CONSUMER.MSG.NEXT.RUNS.{durable}"')
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    with pytest.raises((TimeoutError, JetStreamError)):
        await js.pull_subscribe("runs.requested.*", durable=durable, stream="RUNS")
    await runner.refused(f"$JS.API.CONSUMER.INFO.RUNS.{durable}")
    # The message is still there, and satisfaction gets it.
    assert await pending(satisfaction, durable) == (1, 0)
    messages = await subscription.fetch(1, timeout=5)
    assert messages[0].data == b'{"run_id": "run-of-b"}'
    await messages[0].ack_sync(timeout=5)


async def test_runner_cannot_ack_satisfactions_messages(runner_auth, connect, satisfaction_consumer) -> None:
    satisfaction, subscription, durable = satisfaction_consumer
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    (message,) = await subscription.fetch(1, timeout=5)
    # A runner that learnt the ack subject (it names stream, consumer and sequence) tries to ack it.
    assert message.reply.startswith(f"$JS.ACK.RUNS.{durable}.")
    await runner.nc.publish(message.reply, b"+ACK")
    await runner.refused(f'Publish to "{message.reply}"')
    await runner.nc.publish(message.reply, b"+TERM")
    await runner.refused(f'Publish to "{message.reply}"')
    assert await pending(satisfaction, durable) == (0, 1)  # still satisfaction's to ack
    await message.ack_sync(timeout=5)
    assert await pending(satisfaction, durable) == (0, 0)


@pytest.mark.parametrize(
    "subject",
    [
        "$JS.API.CONSUMER.CREATE.RUNS",
        "$JS.API.CONSUMER.CREATE.RUNS.mine",
        "$JS.API.CONSUMER.CREATE.RUNS.mine.runs.requested.tenant-a",
        "$JS.API.CONSUMER.DURABLE.CREATE.RUNS.mine",
        "$JS.API.CONSUMER.INFO.RUNS.mine",
        f"$JS.API.CONSUMER.DELETE.RUNS.{SATISFACTION_DURABLE}",
        "$JS.API.CONSUMER.LIST.RUNS",
        "$JS.API.STREAM.INFO.RUNS",
        "$JS.API.STREAM.MSG.GET.RUNS",
        "$JS.API.STREAM.UPDATE.RUNS",
        "$JS.API.STREAM.PURGE.RUNS",
        "$JS.API.INFO",
    ],
)
async def test_runner_cannot_use_the_jetstream_api(runner_auth, connect, subject) -> None:
    runner = await connect(await runner_auth.issue(None))  # not even a platform-wide runner
    await runner.nc.publish(subject, b"{}", reply=f"{runner.nc._inbox_prefix.decode()}.x")
    await runner.refused(f'Publish to "{subject}"')


async def test_runner_cannot_create_an_ephemeral_consumer_on_its_own_tenant(
    runner_auth, connect, declared_jetstream
) -> None:
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    js = runner.nc.jetstream(timeout=JS_TIMEOUT)
    config = ConsumerConfig(name="runner-own", filter_subject="runs.admitted.tenant-a")
    with pytest.raises((TimeoutError, JetStreamError)):
        await js.pull_subscribe("runs.admitted.tenant-a", durable="runner-own", stream="RUNS", config=config)
    await runner.refused("$JS.API.CONSUMER")
