"""The tenant's audit records, filtered, newest first, one page at a time (via `audit.query`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.contract.audit import AuditQueryReply, AuditQueryRequest


@dataclass(frozen=True)
class AuditFilters:
    """What to narrow the records to; None matches everything."""

    user_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def query_audit(
    gw: Gateway, caller: Principal, filters: AuditFilters, *, cursor: str | None, limit: int
) -> AuditQueryReply:
    """Records of the caller's tenant only, with a cursor for the next page."""
    reply = await gw.bus.ask(
        "audit.query",
        AuditQueryRequest(
            tenant_id=caller.tenant_id,
            user_id=filters.user_id,
            connection_id=filters.connection_id,
            provider=filters.provider,
            app_id=filters.app_id,
            run_id=filters.run_id,
            action=filters.action,
            since=filters.since,
            until=filters.until,
            cursor=cursor,
            limit=limit,
        ),
        AuditQueryReply,
    )
    records = [r for r in reply.records if r.record.tenant_id == caller.tenant_id]
    return AuditQueryReply(records=records, next_cursor=reply.next_cursor)
