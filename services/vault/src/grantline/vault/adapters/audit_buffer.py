"""Resolve audit records, buffered in memory and written to the outbox in one insert per flush.

A resolve must not pay for a transaction of its own. Records wait here at most one flush interval
(or until a batch fills) and are then inserted together, with the connections' `last_used_at`, in
one transaction; the outbox relay publishes them. While Postgres is down the buffer keeps them
(bounded; the oldest are dropped past the bound, logged and counted). What is lost on a crash is
at most one flush interval of resolve records of that replica; shutdown flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Table, func, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from grantline.common.contract.audit import AuditAction, AuditRecord
from grantline.common.outbox import outbox_row
from grantline.vault.adapters.tables import connections

log = logging.getLogger(__name__)

AUDIT_DROPPED = Counter(
    "grantline_vault_resolve_audit_dropped_total", "Resolve audit records dropped (buffer overflow)."
)

# tenant, connection_id, provider, user_id, app_id, run_id, tool, outcome, detail, occurred_at
PendingRecord = tuple[
    str, str | None, str, str, str | None, str | None, str | None, str, dict[str, Any], datetime
]


class AuditBuffer:
    """Collects resolve audit records and flushes them in batches."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        *,
        interval_seconds: float,
        max_records: int,
        max_buffered: int = 200_000,
        on_flushed: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._interval = interval_seconds
        self._max_records = max_records
        self._max_buffered = max_buffered
        self._on_flushed = on_flushed
        self._records: list[PendingRecord] = []
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()

    def add(self, record: PendingRecord) -> None:
        """Queue one resolve record (no I/O)."""
        self._records.append(record)
        if len(self._records) > self._max_buffered:
            dropped = len(self._records) - self._max_buffered
            del self._records[:dropped]
            AUDIT_DROPPED.inc(dropped)
            log.error("resolve audit buffer overflow; oldest records dropped", extra={"dropped": dropped})
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
            except Exception as error:  # Postgres away: keep the records, try again next interval
                log.warning("resolve audit flush failed; will retry", extra={"error": type(error).__name__})

    async def flush(self) -> int:
        """Write everything buffered now; returns how many records were written."""
        async with self._lock:
            written = 0
            while self._records:
                batch = self._records[: self._max_records]
                await self._write(batch)
                del self._records[: len(batch)]
                written += len(batch)
            if written and self._on_flushed is not None:
                self._on_flushed()
            return written

    async def _write(self, batch: list[PendingRecord]) -> None:
        rows = [outbox_row(_record(item)) for item in batch]
        used = sorted({item[1] for item in batch if item[1] is not None and item[7] == "success"})
        async with self._engine.begin() as conn:
            await conn.execute(insert(self._outbox), rows)
            if used:
                await conn.execute(
                    update(connections).where(connections.c.id.in_(used)).values(last_used_at=func.now())
                )


def _record(item: PendingRecord) -> AuditRecord:
    tenant, connection_id, provider, user_id, app_id, run_id, tool, outcome, detail, occurred_at = item
    return AuditRecord(
        tenant_id=tenant,
        actor=f"user:{user_id}",
        action=AuditAction.TOKEN_RESOLVED,
        connection_id=connection_id,
        provider=provider,
        user_id=user_id,
        app_id=app_id,
        run_id=run_id,
        tool=tool,
        outcome=outcome,  # type: ignore[arg-type]
        detail=detail,
        occurred_at=occurred_at,
    )
