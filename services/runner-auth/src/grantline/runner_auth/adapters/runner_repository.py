"""The runner registry in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.runner_auth.adapters.tables import runners
from grantline.runner_auth.domain.runner import Runner


def _runner(row: Any) -> Runner:
    return Runner(
        runner_id=row.runner_id,
        name=row.name,
        tenants=None if row.platform_wide else tuple(row.tenants),
        secret_hash=bytes(row.secret_hash),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def add_runner(
    session: AsyncSession,
    *,
    runner_id: str,
    name: str,
    tenants: Sequence[str] | None,
    secret_hash: bytes,
    created_by: str,
) -> Runner:
    """Insert a runner and return it as stored."""
    row = (
        await session.execute(
            insert(runners)
            .values(
                runner_id=runner_id,
                name=name,
                tenants=None if tenants is None else list(tenants),
                platform_wide=tenants is None,
                secret_hash=secret_hash,
                created_by=created_by,
            )
            .returning(runners)
        )
    ).one()
    return _runner(row)


async def get_runner(session: AsyncSession, runner_id: str) -> Runner | None:
    """The runner with this id, revoked or not."""
    row = (await session.execute(select(runners).where(runners.c.runner_id == runner_id))).one_or_none()
    return None if row is None else _runner(row)


async def list_runners(
    session: AsyncSession, *, only_tenant: str | None = None, include_revoked: bool = False
) -> list[Runner]:
    """Runners, oldest first: all, or those created for ``only_tenant`` alone."""
    query = select(runners).order_by(runners.c.created_at, runners.c.runner_id)
    if only_tenant is not None:
        query = query.where(runners.c.tenants == [only_tenant])
    if not include_revoked:
        query = query.where(runners.c.revoked_at.is_(None))
    return [_runner(row) for row in (await session.execute(query)).all()]


async def mark_revoked(session: AsyncSession, runner_id: str, *, revoked_by: str) -> Runner | None:
    """Revoke a runner (idempotent: a revoked one keeps its first revocation time)."""
    row = (
        await session.execute(
            update(runners)
            .where(runners.c.runner_id == runner_id)
            .values(
                revoked_at=func.coalesce(runners.c.revoked_at, func.now()),
                revoked_by=func.coalesce(runners.c.revoked_by, revoked_by),
            )
            .returning(runners)
        )
    ).one_or_none()
    return None if row is None else _runner(row)


async def revocations_to_enforce(session: AsyncSession, *, grace: timedelta, limit: int = 100) -> list[str]:
    """Revoked runners whose connections the sweep must still look for.

    A runner stays on this list until a sweep has run at least ``grace`` after its revocation: a
    connection authorised just before the revocation committed may register with the server a moment
    after the first kick.
    """
    query = (
        select(runners.c.runner_id)
        .where(
            and_(
                runners.c.revoked_at.is_not(None),
                or_(
                    runners.c.kick_checked_at.is_(None),
                    runners.c.kick_checked_at < runners.c.revoked_at + grace,
                ),
            )
        )
        .order_by(runners.c.revoked_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def mark_kick_checked(session: AsyncSession, runner_ids: Sequence[str], at: datetime) -> None:
    """Record that the sweep closed these runners' connections at ``at``."""
    if runner_ids:
        await session.execute(
            update(runners).where(runners.c.runner_id.in_(list(runner_ids))).values(kick_checked_at=at)
        )
