"""CPU time per request of each process in the benchmark, so figures transfer from a loaded machine.

Wall-clock figures on a shared machine say more about the neighbours than about the code; the CPU
seconds each process spends per request do not. Postgres is the sum over its processes (the
postmaster's backends); NATS is the server process; the client is this process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

PARTS = ("responder", "postgres", "nats", "client")


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds of each part at one moment."""

    seconds: dict[str, float]

    def per_request_us(self, later: CpuSample, requests: int) -> dict[str, float]:
        """Microseconds of CPU per request spent by each part between this sample and `later`."""
        spent = {part: later.seconds[part] - self.seconds[part] for part in PARTS}
        return {part: spent[part] / max(requests, 1) * 1e6 for part in PARTS}


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a backend that ended between listing and reading
        return 0.0
    return times.user + times.system


def sample(responder_pid: int) -> CpuSample:
    """Read the CPU seconds spent so far by the responder, Postgres, NATS and this client."""
    postgres = nats = 0.0
    for child in psutil.Process(os.getpid()).children(recursive=True):
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
            "responder": _cpu(psutil.Process(responder_pid)),
            "postgres": postgres,
            "nats": nats,
            "client": time.process_time(),
        }
    )
