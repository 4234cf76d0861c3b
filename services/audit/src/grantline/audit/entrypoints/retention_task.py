"""Retention: cut every tenant's expired prefix behind a signed checkpoint, one transaction per cut."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.domain.checkpoint import ChainBrokenError, CheckpointKeyring
from grantline.audit.service.retention import cut_prefix, cutoff_for
from grantline.runtime.db.driver import DriverConnection

log = logging.getLogger(__name__)


class LedgerConnections(Protocol):
    """Where retention gets its psycopg connections: the service's runtime, or the CLI's (admin.py)."""

    def driver_transaction(self, *, wake_relay: bool = ...) -> AbstractAsyncContextManager[DriverConnection]:
        """A connection in a transaction: commits when the block ends, rolls back if it raises."""
        ...

    def single_statement(self, *, wake_relay: bool = ...) -> AbstractAsyncContextManager[DriverConnection]:
        """A connection for a unit of work that is one statement."""
        ...


async def _lock_tenant(conn: DriverConnection, tenant_id: str) -> bool:
    # Two replicas cutting one tenant at once would race for the same checkpoint; one of them skips.
    cursor = await conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtext(%(k)s))", {"k": f"audit-retention:{tenant_id}"}
    )
    row = await cursor.fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return bool(row[0])


async def prune_tenant(
    connections: LedgerConnections,
    tenant_id: str,
    *,
    keyring: CheckpointKeyring,
    default_days: int,
    batch: int,
    now: datetime | None = None,
) -> int:
    """Cut the tenant's records past retention, `batch` at a time; the number removed."""
    now = now or datetime.now(UTC)
    removed = 0
    while True:
        # Retention writes no event: no wake of the outbox relay.
        async with connections.driver_transaction(wake_relay=False) as conn:
            if not await _lock_tenant(conn, tenant_id):
                return removed
            cutoff = await cutoff_for(conn, tenant_id, now=now, default_days=default_days)
            cut = await cut_prefix(
                conn, tenant_id, cutoff=cutoff, now=now, keyring=keyring, max_records=batch
            )
        if cut is None:
            return removed
        removed += cut.removed
        log.info(
            "audit prefix cut",
            extra={"tenant_id": tenant_id, "through_seq": cut.checkpoint.seq, "removed": cut.removed},
        )
        if cut.removed < batch:
            return removed


async def prune_all(
    connections: LedgerConnections,
    *,
    keyring: CheckpointKeyring,
    default_days: int,
    batch: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """Run retention for every tenant; tenants whose chain is broken are skipped and logged."""
    async with connections.single_statement(wake_relay=False) as conn:
        tenant_ids = await repo.tenants(conn)
    removed: dict[str, int] = {}
    for tenant_id in tenant_ids:
        try:
            removed[tenant_id] = await prune_tenant(
                connections, tenant_id, keyring=keyring, default_days=default_days, batch=batch, now=now
            )
        except ChainBrokenError as error:
            log.error(
                "audit retention refused: the records to cut do not verify",
                extra={"tenant_id": tenant_id, "reason": str(error)},
            )
    return removed


def retention_loop(
    connections: LedgerConnections,
    *,
    keyring: CheckpointKeyring,
    default_days: int,
    batch: int,
    interval_seconds: float,
) -> Callable[[], Awaitable[None]]:
    """A background task that runs retention every `interval_seconds`."""

    async def loop() -> None:
        while True:
            await prune_all(connections, keyring=keyring, default_days=default_days, batch=batch)
            await asyncio.sleep(interval_seconds)

    return loop
