"""Three embedded nats-servers routed into one JetStream cluster (fault tests and the soak).

Each node is an ``EmbeddedNats`` with its own store, client port and cluster port, named ``n1``..``n3``
(JetStream clustering needs stable server names: a restarted node rejoins under its name and catches
up its stream replicas from the others). Clients get every node's URL (``url`` is comma-separated, as
``GRANTLINE_NATS_URL`` takes it) and fail over between them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grantline.devstack.embedded import free_port
from grantline.devstack.embedded_nats import EmbeddedNats

CLUSTER_NAME = "grantline"


class EmbeddedNatsCluster:
    """``size`` nats-server processes on free ports under ``data_dir``, clustered with JetStream."""

    def __init__(self, data_dir: Path, *, size: int = 3, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).resolve()
        cluster_ports = [free_port(host) for _ in range(size)]
        routes = ",".join(f"nats://{host}:{port}" for port in cluster_ports)
        self.nodes = [
            EmbeddedNats(self.data_dir / f"n{index + 1}", host=host, extra_args=node_args)
            for index, node_args in enumerate(
                ("--server_name", f"n{index + 1}", "--cluster_name", CLUSTER_NAME,
                 "--cluster", f"nats://{host}:{port}", "--routes", routes)
                for index, port in enumerate(cluster_ports)
            )
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 60) -> None:
        """Start every node and return once each reports JetStream healthy (a quorum formed)."""
        for node in self.nodes:
            node.launch()
        # A node's /healthz waits for the JetStream meta group, which needs a quorum: wait on all at once.
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for waited in [pool.submit(node.wait_ready, timeout) for node in self.nodes]:
                waited.result()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self, index: int) -> None:
        """SIGKILL one node, as a crashed pod."""
        self.nodes[index].kill()

    def start_node(self, index: int, timeout: float = 60) -> float:
        """Start a stopped or killed node again (same ports, same store); seconds until it is healthy."""
        began = time.monotonic()
        self.nodes[index].start(timeout)
        return time.monotonic() - began

    def running(self) -> list[int]:
        return [index for index, node in enumerate(self.nodes) if node.is_running()]
