"""Events and audit records the vault writes to its outbox, and connection metadata replies."""

from __future__ import annotations

from typing import Any

from grantline.contract.audit import AuditRecord, Outcome
from grantline.contract.envelope import Event
from grantline.contract.vault import ConnectionInfo
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import write_events
from grantline.vault.adapters.connection_repository import StoredConnection
from grantline.vault.service.context import VaultContext

ACTOR = "vault"


def audit(
    tenant_id: str,
    action: str,
    *,
    actor: str = ACTOR,
    connection_id: str | None = None,
    provider: str | None = None,
    user_id: str | None = None,
    outcome: Outcome = "success",
    detail: dict[str, Any] | None = None,
    **extra: str | None,
) -> AuditRecord:
    """An audit record (ids, outcome, at most a fingerprint: never a token)."""
    return AuditRecord(
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        connection_id=connection_id,
        provider=provider,
        user_id=user_id,
        outcome=outcome,
        detail=detail or {},
        **extra,  # type: ignore[arg-type]
    )


async def emit(ctx: VaultContext, conn: DriverConnection, *events: Event) -> None:
    """Write events to the outbox in `conn`'s transaction."""
    await write_events(conn, ctx.outbox, events)


def owner_user(owner: str) -> str | None:
    """The user id of a `user:<id>` owner."""
    return owner.removeprefix("user:") if owner.startswith("user:") else None


def connection_info(row: StoredConnection) -> ConnectionInfo:
    """Connection metadata for replies: never a secret column."""
    return ConnectionInfo(
        connection_id=row.id,
        tenant_id=row.tenant_id,
        owner=row.owner,
        provider=row.provider,
        status=row.status,
        scopes=list(row.scopes or []),
        missing_scopes=list(row.missing_scopes or []),
        account=row.account,
        expires_at=row.expires_at,
        last_refreshed_at=row.last_refreshed_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        is_default=row.is_default,
        name=row.name,
        settings={str(k): str(v) for k, v in (row.settings or {}).items()},
        provider_app=row.provider_app,
    )
