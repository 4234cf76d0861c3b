"""The vault's record of finished runs (their grants resolve nothing more)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.tables import finished_runs


async def add_finished(session: AsyncSession, runs: Iterable[tuple[str, str]]) -> None:
    """Remember runs as finished; a run already known stays as it was (redeliveries change nothing)."""
    rows = [{"tenant_id": tenant_id, "run_id": run_id} for tenant_id, run_id in runs]
    if rows:
        await session.execute(insert(finished_runs).values(rows).on_conflict_do_nothing())


async def forget_finished_before(session: AsyncSession, cutoff: datetime) -> int:
    """Drop runs finished before ``cutoff`` (no grant of theirs can still be current); returns how many."""
    result = await session.execute(delete(finished_runs).where(finished_runs.c.finished_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
