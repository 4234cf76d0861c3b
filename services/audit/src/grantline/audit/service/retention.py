"""Retention: cut a tenant's records older than its retention, behind a signed checkpoint."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.domain.checkpoint import Checkpoint, CheckpointKeyring, plan_retention
from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class Cut:
    """One retention cut: the checkpoint written and how many records it removed."""

    checkpoint: Checkpoint
    removed: int


async def cutoff_for(conn: DriverConnection, tenant_id: str, *, now: datetime, default_days: int) -> datetime:
    """Records received before this instant are past the tenant's retention."""
    days = await repo.retention_days(conn, tenant_id)
    return now - timedelta(days=days if days is not None else default_days)


async def cut_prefix(
    conn: DriverConnection,
    tenant_id: str,
    *,
    cutoff: datetime,
    now: datetime,
    keyring: CheckpointKeyring,
    max_records: int,
) -> Cut | None:
    """Cut up to `max_records` of the oldest records received before `cutoff`; never commits.

    The checkpoint and the deletion belong in one transaction: the database refuses to delete rows that
    no checkpoint covers, and a checkpoint without its deletion would only be a harmless early marker.
    Raises ChainBrokenError if the records to cut do not verify: cutting them would hide tampering.
    """
    latest = await repo.latest_checkpoint(conn, tenant_id)
    start = latest.head if latest is not None else None
    records = await repo.first_records(
        conn, tenant_id, after_seq=start.seq if start else 0, limit=max_records
    )
    plan = plan_retention(records, tenant_id=tenant_id, start=start, cutoff=cutoff)
    if plan is None:
        return None
    checkpoint = plan.checkpoint(created_at=now, keyring=keyring)
    await repo.add_checkpoint(conn, checkpoint)
    removed = await repo.delete_prefix(conn, tenant_id, through_seq=plan.last_removed.seq)
    return Cut(checkpoint, removed)
