"""Retention: cut every tenant's expired prefix behind a signed checkpoint, one transaction per cut."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.domain.checkpoint import ChainBrokenError, CheckpointKeyring
from grantline.audit.service.retention import cut_prefix, cutoff_for

log = logging.getLogger(__name__)


async def _lock_tenant(session: AsyncSession, tenant_id: str) -> bool:
    # Two replicas cutting one tenant at once would race for the same checkpoint; one of them skips.
    result = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": f"audit-retention:{tenant_id}"}
    )
    return bool(result.scalar_one())


async def prune_tenant(
    sessions: async_sessionmaker[AsyncSession],
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
        async with sessions() as session, session.begin():
            if not await _lock_tenant(session, tenant_id):
                return removed
            cutoff = await cutoff_for(session, tenant_id, now=now, default_days=default_days)
            cut = await cut_prefix(
                session, tenant_id, cutoff=cutoff, now=now, keyring=keyring, max_records=batch
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
    sessions: async_sessionmaker[AsyncSession],
    *,
    keyring: CheckpointKeyring,
    default_days: int,
    batch: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """Run retention for every tenant; tenants whose chain is broken are skipped and logged."""
    async with sessions() as session:
        tenant_ids = await repo.tenants(session)
    removed: dict[str, int] = {}
    for tenant_id in tenant_ids:
        try:
            removed[tenant_id] = await prune_tenant(
                sessions, tenant_id, keyring=keyring, default_days=default_days, batch=batch, now=now
            )
        except ChainBrokenError as error:
            log.error(
                "audit retention refused: the records to cut do not verify",
                extra={"tenant_id": tenant_id, "reason": str(error)},
            )
    return removed


def retention_loop(
    sessions: async_sessionmaker[AsyncSession],
    *,
    keyring: CheckpointKeyring,
    default_days: int,
    batch: int,
    interval_seconds: float,
) -> Callable[[], Awaitable[None]]:
    """A background task that runs retention every `interval_seconds`."""

    async def loop() -> None:
        while True:
            await prune_all(sessions, keyring=keyring, default_days=default_days, batch=batch)
            await asyncio.sleep(interval_seconds)

    return loop
