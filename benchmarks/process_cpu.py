"""CPU seconds spent by the processes a benchmark runs, so figures transfer from a loaded, shared machine.

Wall-clock figures on two shared cores say as much about the neighbours as about the code; the CPU
each process spends per message does not. Postgres is the sum over its processes (the postmaster and
its backends), NATS is the server process, the client is the benchmark's own process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of one process (0 when it has ended)."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a backend that ended between listing and reading
        return 0.0
    return times.user + times.system


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants (a server and its workers, say)."""
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    return sum(cpu_seconds(member) for member in members)


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds of each part at one moment."""

    seconds: dict[str, float]

    def per_item(self, later: CpuSample, items: int, *, unit: float) -> dict[str, float]:
        """CPU per item of each part between this sample and ``later`` (``unit`` 1e3: ms, 1e6: us)."""
        return {
            part: (later.seconds[part] - self.seconds[part]) / max(items, 1) * unit for part in self.seconds
        }


def sample(service: str, service_pid: int) -> CpuSample:
    """CPU seconds so far of the service under test (named ``service``), Postgres and NATS (children of
    this process) and this client."""
    postgres = nats = 0.0
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            name = child.name()
        except psutil.NoSuchProcess:
            continue
        if name.startswith("postgres"):
            postgres += cpu_seconds(child)
        elif name.startswith("nats-server"):
            nats += cpu_seconds(child)
    return CpuSample(
        {
            service: cpu_seconds(psutil.Process(service_pid)),
            "postgres": postgres,
            "nats": nats,
            "client": time.process_time(),
        }
    )
