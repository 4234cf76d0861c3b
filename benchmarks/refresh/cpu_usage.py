"""CPU seconds spent by each process of the benchmark (and its children) over a measured interval."""

from __future__ import annotations

import os

import psutil

from benchmarks.process_cpu import tree_cpu_seconds


class CpuMeter:
    """Samples user+system CPU of named process trees; ``since`` gives the seconds used per name."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        # The benchmark's own process (pacing, progress, the stand-in when it runs) without children.
        self.pids = pids
        self._start = self.sample()

    def sample(self) -> dict[str, float]:
        """CPU seconds used so far per name."""
        figures = {name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}
        own = psutil.Process(os.getpid()).cpu_times()
        figures["benchmark process"] = own.user + own.system
        return figures

    def restart(self) -> None:
        """Start a new interval now."""
        self._start = self.sample()

    def since(self) -> dict[str, float]:
        """CPU seconds per name since the interval began."""
        now = self.sample()
        return {name: now[name] - self._start.get(name, 0.0) for name in now}
