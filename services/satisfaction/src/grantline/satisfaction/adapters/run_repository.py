"""Reading and writing ``runs`` and ``run_connections``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.satisfaction.adapters.tables import run_connections, runs


@dataclass(frozen=True)
class HeldRun:
    """A held run that a later grant may admit."""

    run_id: str
    user_id: str
    trigger: str
    requirements: list[dict[str, Any]]
    app_id: str
    is_test: bool


async def insert_run(
    session: AsyncSession,
    *,
    tenant_id: str,
    run_id: str,
    user_id: str,
    app_id: str,
    trigger: str,
    is_test: bool,
    status: str,
    requirements: list[dict[str, Any]],
) -> bool:
    """Start tracking a run; False when the run id is already known (a repeat, or finished before)."""
    result = await session.execute(
        insert(runs)
        .values(
            tenant_id=tenant_id,
            run_id=run_id,
            user_id=user_id,
            app_id=app_id,
            trigger=trigger,
            is_test=is_test,
            status=status,
            requirements=requirements,
        )
        .on_conflict_do_nothing(constraint="runs_pkey")
        .returning(runs.c.run_id)
    )
    return result.first() is not None


async def held_runs(session: AsyncSession, tenant_id: str, user_id: str | None) -> list[HeldRun]:
    """Held runs that a grant may resume: the user's, or every user's of the tenant when None."""
    query = select(
        runs.c.run_id, runs.c.user_id, runs.c.trigger, runs.c.requirements, runs.c.app_id, runs.c.is_test
    ).where(runs.c.tenant_id == tenant_id, runs.c.status == "held", runs.c.trigger != "schedule")
    if user_id is not None:
        query = query.where(runs.c.user_id == user_id)
    rows = (await session.execute(query.order_by(runs.c.created_at, runs.c.run_id))).all()
    return [
        HeldRun(row.run_id, row.user_id, row.trigger, row.requirements, row.app_id, row.is_test)
        for row in rows
    ]


async def admit_held_run(session: AsyncSession, tenant_id: str, run_id: str) -> bool:
    """Move a run from held to admitted; False when it is no longer held (someone else admitted it)."""
    # The status condition makes this the single point of decision: of two replicas racing on the
    # same run, the second waits on the row lock, re-reads the status and updates nothing.
    result = await session.execute(
        update(runs)
        .where(runs.c.tenant_id == tenant_id, runs.c.run_id == run_id, runs.c.status == "held")
        .values(status="admitted", updated_at=func.now())
        .returning(runs.c.run_id)
    )
    return result.first() is not None


async def finish_run(session: AsyncSession, tenant_id: str, run_id: str) -> None:
    """End tracking: the run becomes ``finished`` (a tombstone if unseen) and forgets its connections."""
    stmt = insert(runs).values(tenant_id=tenant_id, run_id=run_id, trigger="api", status="finished")
    await session.execute(
        stmt.on_conflict_do_update(
            constraint="runs_pkey", set_={"status": "finished", "updated_at": func.now()}
        )
    )
    await session.execute(
        delete(run_connections).where(
            run_connections.c.tenant_id == tenant_id, run_connections.c.run_id == run_id
        )
    )


async def run_is_finished(session: AsyncSession, tenant_id: str, run_id: str) -> bool:
    """Whether the run has finished (a resolve reported after that is not tracked)."""
    status = (
        await session.execute(
            select(runs.c.status).where(runs.c.tenant_id == tenant_id, runs.c.run_id == run_id)
        )
    ).scalar_one_or_none()
    return status == "finished"


async def record_resolution(
    session: AsyncSession, tenant_id: str, run_id: str, connection_id: str, provider: str | None, at: datetime
) -> bool:
    """Remember that the run resolved the connection; False when it was already remembered."""
    result = await session.execute(
        insert(run_connections)
        .values(
            tenant_id=tenant_id, run_id=run_id, connection_id=connection_id, provider=provider, resolved_at=at
        )
        .on_conflict_do_nothing(constraint="run_connections_pkey")
        .returning(run_connections.c.run_id)
    )
    return result.first() is not None


def _mark_revoked_statement(one_run: bool) -> Any:
    finished = exists().where(
        and_(
            runs.c.tenant_id == run_connections.c.tenant_id,
            runs.c.run_id == run_connections.c.run_id,
            runs.c.status == "finished",
        )
    )
    stmt = (
        update(run_connections)
        .where(
            run_connections.c.tenant_id == bindparam("tenant"),
            run_connections.c.connection_id == bindparam("connection"),
            run_connections.c.revoked_at.is_(None),
            ~finished,
        )
        .values(revoked_at=bindparam("at"))
        .returning(run_connections.c.run_id, run_connections.c.provider)
    )
    return stmt.where(run_connections.c.run_id == bindparam("run")) if one_run else stmt


# Built once (constructing them cost more than running them); the revocation path runs one per event.
_MARK_REVOKED = _mark_revoked_statement(one_run=False)
_MARK_RUN_REVOKED = _mark_revoked_statement(one_run=True)


async def mark_revoked(
    session: AsyncSession, tenant_id: str, connection_id: str, at: datetime, run_id: str | None = None
) -> list[tuple[str, str | None]]:
    """Mark the in-flight runs that resolved the connection as told; returns ``(run_id, provider)`` of each.

    Runs already told are skipped (each run hears about a connection once); finished runs are skipped.
    """
    parameters = {"tenant": tenant_id, "connection": connection_id, "at": at}
    if run_id is None:
        rows = (await session.execute(_MARK_REVOKED, parameters)).all()
    else:
        rows = (await session.execute(_MARK_RUN_REVOKED, {**parameters, "run": run_id})).all()
    return sorted((row.run_id, row.provider) for row in rows)


async def run_status(session: AsyncSession, tenant_id: str, run_id: str) -> str | None:
    """A run's status (``held``, ``admitted``, ``finished``, ``invalid``), or None when unknown."""
    status = await session.scalar(
        select(runs.c.status).where(runs.c.tenant_id == tenant_id, runs.c.run_id == run_id)
    )
    return str(status) if status is not None else None
