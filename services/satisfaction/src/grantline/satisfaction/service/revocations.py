"""Use cases: remember which connections each run resolved, and tell runs when one is revoked."""

from __future__ import annotations

from grantline.contract.audit import AuditRecord
from grantline.contract.envelope import utc_now
from grantline.contract.runs import RunConnectionRevoked
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import OutboxLocation, write_events
from grantline.satisfaction.adapters import run_repository
from grantline.satisfaction.adapters.locks import lock_user

# The connection's revocation, if the mirror's newest state event for it is one.
_REVOKED = (
    "SELECT provider, last_reason FROM satisfaction.connection_mirror"
    " WHERE tenant_id = %(tenant_id)s AND connection_id = %(connection_id)s"
    " AND last_event_kind = 'revoked'"
)


async def tell_runs_of_revocation(
    conn: DriverConnection,
    outbox: OutboxLocation,
    tenant_id: str,
    connection_id: str,
    provider: str,
    reason: str,
    run_id: str | None = None,
) -> list[RunConnectionRevoked]:
    """Publish ``runs.connection_revoked`` to each in-flight run that resolved the connection, once."""
    told = await run_repository.mark_revoked(conn, tenant_id, connection_id, utc_now(), run_id)
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
    await write_events(conn, outbox, events)
    return events


async def remember_resolution(
    conn: DriverConnection, outbox: OutboxLocation, record: AuditRecord, *, locked: bool = False
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
        await lock_user(conn, record.tenant_id, record.user_id)
    if await run_repository.run_is_finished(conn, record.tenant_id, record.run_id):
        return []
    added = await run_repository.record_resolution(
        conn, record.tenant_id, record.run_id, record.connection_id, record.provider, record.occurred_at
    )
    if not added:
        return []
    cursor = await conn.execute(
        _REVOKED, {"tenant_id": record.tenant_id, "connection_id": record.connection_id}
    )
    revoked = await cursor.fetchone()
    if revoked is None:
        return []
    revoked_provider, last_reason = revoked
    return await tell_runs_of_revocation(
        conn,
        outbox,
        record.tenant_id,
        record.connection_id,
        revoked_provider,
        last_reason or "provider",
        run_id=record.run_id,
    )
