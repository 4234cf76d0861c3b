"""Records kept in memory and handed on in batches, for paths that must not pay for I/O per record.

The vault's resolve audit records (written to its outbox) and the proxy's call records (published to
the AUDIT stream) both wait here: at most one flush interval, or until a batch fills. While the
destination is away they stay (bounded: past the bound the oldest are dropped, logged and counted);
shutdown flushes. What a crash loses is at most one interval of that replica's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Generic, TypeVar

from prometheus_client import Counter

log = logging.getLogger(__name__)

T = TypeVar("T")


class RecordsKept(RuntimeError):
    """Some records of a batch were not handed on; they stay buffered for the next flush."""


class RecordBuffer(Generic[T]):
    """Collects records with no I/O and hands them on in batches (``_hand_on``, by the subclass)."""

    def __init__(
        self, *, name: str, interval_seconds: float, max_records: int, max_buffered: int, dropped: Counter
    ) -> None:
        self._name = name
        self._interval = interval_seconds
        self._max_records = max_records
        self._max_buffered = max_buffered
        self._dropped = dropped
        self._records: list[T] = []
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()

    def add(self, record: T) -> None:
        """Queue one record (no I/O)."""
        self._records.append(record)
        if len(self._records) > self._max_buffered:
            dropped = len(self._records) - self._max_buffered
            del self._records[:dropped]
            self._dropped.inc(dropped)
            log.error(f"{self._name} buffer overflow; oldest records dropped", extra={"dropped": dropped})
        if len(self._records) >= self._max_records:
            self._full.set()

    def __len__(self) -> int:
        return len(self._records)

    async def run(self) -> None:
        """Flush every interval (or as soon as a batch fills) until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=self._interval)
            self._full.clear()
            try:
                await self.flush()
            except Exception as error:  # the destination is away: keep the records, try next interval
                log.warning(f"{self._name} flush failed; will retry", extra={"error": type(error).__name__})

    async def flush(self) -> int:
        """Hand on everything buffered now; returns how many records went."""
        async with self._lock:
            done = 0
            while self._records:
                batch = self._records[: self._max_records]
                kept = await self._hand_on(batch)  # raising leaves the whole batch buffered
                del self._records[: len(batch)]
                done += len(batch) - len(kept)
                if kept:
                    self._records[0:0] = kept
                    raise RecordsKept(f"{len(kept)} {self._name} records kept for the next flush")
            if done:
                self._flushed()
            return done

    async def _hand_on(self, batch: list[T]) -> list[T]:
        """Write or publish ``batch``; return the records that did not go (they are kept)."""
        raise NotImplementedError

    def _flushed(self) -> None:
        """Called after a flush that handed records on (a hook for subclasses)."""
