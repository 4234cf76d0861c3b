"""One NATS node killed during a step and started again at a random moment (tests/e2e cluster walk).

The random choices (which node, how long it stays down) come from one seeded generator: the seed is
printed, and ``GRANTLINE_TEST_CLUSTER_SEED`` replays a run.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from grantline.devstack.embedded_nats_cluster import EmbeddedNatsCluster

SEED_VAR = "GRANTLINE_TEST_CLUSTER_SEED"


@dataclass
class Fault:
    step: str
    node: int
    down_for: float
    back_after: float = 0.0


@dataclass
class NodeFaults:
    """Kills one node per step (never two at once: R3 keeps a quorum with one node down)."""

    cluster: EmbeddedNatsCluster
    seed: int = field(default_factory=lambda: int(os.environ.get(SEED_VAR) or random.randrange(1 << 30)))
    log: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        print(f"cluster faults: {SEED_VAR}={self.seed}")

    @contextlib.contextmanager
    def node_down_during(self, step: str, *, spare: set[int] = frozenset()) -> Iterator[Fault]:  # type: ignore[assignment]
        """Kill a random node (not one in ``spare``) now; start it again after a random 0-3 s, in the
        background, so the step runs with the node down, coming back, or back; wait for it on exit."""
        victims = [index for index in self.cluster.running() if index not in spare]
        fault = Fault(step, self.random.choice(victims), round(self.random.uniform(0.0, 3.0), 2))
        self.cluster.kill(fault.node)
        restarted = threading.Thread(target=self._restart, args=(fault,), daemon=True)
        restarted.start()
        try:
            yield fault
        finally:
            restarted.join(90)
            self.log.append(fault)
            assert self.cluster.nodes[fault.node].is_running(), f"node n{fault.node + 1} did not come back"

    def _restart(self, fault: Fault) -> None:
        time.sleep(fault.down_for)  # the random point of the step at which the node returns
        fault.back_after = self.cluster.start_node(fault.node)

    def node_of(self, connected_url: str) -> int | None:
        """Which node a client is connected to (``nc.connected_url.netloc``)."""
        for index, node in enumerate(self.cluster.nodes):
            if connected_url.endswith(f":{node.port}"):
                return index
        return None
