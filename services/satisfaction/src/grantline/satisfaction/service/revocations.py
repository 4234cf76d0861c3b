"""Use cases: remember which connections each run resolved, and tell runs when one is revoked."""

from __future__ import annotations

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.contract.audit import AuditRecord
from grantline.contract.envelope import utc_now
from grantline.contract.runs import RunConnectionRevoked
from grantline.runtime.outbox import add_events
from grantline.satisfaction.adapters import run_repository
from grantline.satisfaction.adapters.locks import lock_user
from grantline.satisfaction.adapters.tables import connection_mirror


async def tell_runs_of_revocation(
    session: AsyncSession,
    outbox: Table,
    tenant_id: str,
    connection_id: str,
    provider: str,
    reason: str,
    run_id: str | None = None,
) -> list[RunConnectionRevoked]:
    """Publish ``runs.connection_revoked`` to each in-flight run that resolved the connection, once."""
    told = await run_repository.mark_revoked(session, tenant_id, connection_id, utc_now(), run_id)
    events = [
        RunConnectionRevoked(
            tenant_id=tenant_id,
            run_id=told_run,
            connection_id=connection_id,
            provider=told_provider or provider,
            reason=reason,
        )
        for told_run, told_provider in told
    ]
    await add_events(session, outbox, events)
    return events


async def remember_resolution(
    session: AsyncSession, outbox: Table, record: AuditRecord, *, locked: bool = False
) -> list[RunConnectionRevoked]:
    """Remember that a run resolved a connection; tell it at once if the connection is already revoked.

    The resolve audit record and the revocation travel on different streams, so the revocation can be
    applied first; without the check the run would never hear of it. ``locked``: the caller holds the
    user's lock already.
    """
    if record.outcome != "success" or not record.run_id or not record.connection_id:
        return []
    if record.user_id and not locked:
        # Serializes with a revocation of this user's (or the workspace's) connection, which takes
        # the same lock: one of the two always sees the other's row.
        await lock_user(session, record.tenant_id, record.user_id)
    if await run_repository.run_is_finished(session, record.tenant_id, record.run_id):
        return []
    added = await run_repository.record_resolution(
        session, record.tenant_id, record.run_id, record.connection_id, record.provider, record.occurred_at
    )
    if not added:
        return []
    revoked = (
        await session.execute(
            select(connection_mirror.c.provider, connection_mirror.c.last_reason).where(
                connection_mirror.c.tenant_id == record.tenant_id,
                connection_mirror.c.connection_id == record.connection_id,
                connection_mirror.c.last_event_kind == "revoked",
            )
        )
    ).first()
    if revoked is None:
        return []
    return await tell_runs_of_revocation(
        session,
        outbox,
        record.tenant_id,
        record.connection_id,
        revoked.provider,
        revoked.last_reason or "provider",
        run_id=record.run_id,
    )
