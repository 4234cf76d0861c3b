"""CPU seconds per message of each process, so figures transfer from a loaded, shared machine.

Wall-clock latency on two shared cores says as much about the neighbours as about the code; the CPU each
process spends per message does not. Postgres is the sum over its processes (the postmaster and its
backends), NATS is the server process, the service is ``grantline run satisfaction``, the client is the
load generator.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

PARTS = ("service", "postgres", "nats", "client")


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds of each part at one moment."""

    seconds: dict[str, float]

    def per_message_ms(self, later: CpuSample, messages: int) -> dict[str, float]:
        """Milliseconds of CPU per message spent by each part between this sample and ``later``."""
        return {part: (later.seconds[part] - self.seconds[part]) / max(messages, 1) * 1e3 for part in PARTS}


def describe(per_message: dict[str, float]) -> str:
    """``service 0.52 ms, postgres 0.31 ms, ...`` for a report line."""
    return ", ".join(f"{part} {per_message[part]:.2f} ms" for part in PARTS)


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a backend that ended between listing and reading
        return 0.0
    return times.user + times.system


def sample(service_pid: int, servers_root_pid: int | None = None) -> CpuSample:
    """The CPU seconds spent so far by the service, Postgres, NATS (descendants of the root) and us."""
    postgres = nats = 0.0
    root = psutil.Process(servers_root_pid or os.getpid())
    for child in root.children(recursive=True):
        try:
            name = child.name()
        except psutil.NoSuchProcess:
            continue
        if name.startswith("postgres"):
            postgres += _cpu(child)
        elif name.startswith("nats-server"):
            nats += _cpu(child)
    return CpuSample(
        {
            "service": _cpu(psutil.Process(service_pid)),
            "postgres": postgres,
            "nats": nats,
            "client": time.process_time(),
        }
    )
