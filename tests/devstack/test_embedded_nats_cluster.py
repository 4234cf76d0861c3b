"""The three-node embedded NATS cluster: streams declared at R3 by migrate's function survive a node.

A few seconds, so it stays in the default run; the whole-stack walk on the cluster is
tests/e2e/test_e2e_cluster_lifecycle.py (GRANTLINE_TEST_CLUSTER=1).
"""

from pathlib import Path

import nats
from fixtures.waiting import wait_for_async
from nats.js.errors import NoStreamResponseError

from grantline.devstack.embedded_nats_cluster import EmbeddedNatsCluster
from grantline.runtime.nats.declaration import declare_jetstream
from grantline.runtime.nats.streams import RUNS


async def test_r3_streams_keep_accepting_and_catch_up_a_restarted_node(embedded_dir: Path) -> None:
    cluster = EmbeddedNatsCluster(embedded_dir)
    cluster.start()
    try:
        nc = await nats.connect(cluster.url.split(","), connect_timeout=5, max_reconnect_attempts=-1)
        js = nc.jetstream(timeout=10)
        await declare_jetstream(js, replicas=3)
        info = await js.stream_info(RUNS.name)
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert len(info.cluster.replicas or []) == 2  # the leader and two followers

        # Kill a node that is not the client's: publishing still reaches a quorum. If the stream's
        # leader was on it, publishes get no answer until the others elect one; they are retried as
        # the outbox relay retries them, and the message id keeps a retried publish from being stored
        # twice.
        connected = str(nc.connected_url.netloc if nc.connected_url else "")
        victim = next(i for i, node in enumerate(cluster.nodes) if not connected.endswith(f":{node.port}"))
        cluster.kill(victim)

        async def published(index: int) -> bool:
            try:
                await js.publish("runs.requested.t1", b"{}", headers={"Nats-Msg-Id": f"m{index}"}, timeout=2)
            except (NoStreamResponseError, TimeoutError, nats.errors.TimeoutError):
                return False
            return True

        for index in range(5):
            await wait_for_async(lambda index=index: published(index), timeout=30, interval=0.2)
        cluster.start_node(victim)

        async def caught_up() -> bool:
            state = await js.stream_info(RUNS.name)
            peers = state.cluster.replicas or [] if state.cluster else []
            return state.state.messages == 5 and len(peers) == 2 and all(p.current for p in peers)

        await wait_for_async(caught_up, timeout=30, interval=0.2)
        await nc.close()
    finally:
        cluster.stop()
