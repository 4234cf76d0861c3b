"""`/v1/audit`: the tenant's audit records, filtered, newest pages by cursor (via `audit.query`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service.audit_query import AuditFilters
from grantline.auth_gateway.service.audit_query import query_audit as query_audit_records
from grantline.contract.audit import ACTION_PATTERN, AuditQueryReply

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)

Filter = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("", response_model=AuditQueryReply, summary="Query audit records")
async def query_audit(
    gw: GatewayDep,
    caller: AdminDep,
    user_id: Filter = None,
    connection_id: Filter = None,
    provider: Filter = None,
    app_id: Filter = None,
    run_id: Filter = None,
    action: Annotated[str | None, Query(max_length=100, pattern=ACTION_PATTERN)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditQueryReply:
    """Records of this tenant only, with a cursor for the next page."""
    filters = AuditFilters(
        user_id=user_id,
        connection_id=connection_id,
        provider=provider,
        app_id=app_id,
        run_id=run_id,
        action=action,
        since=since,
        until=until,
    )
    return await query_audit_records(gw, caller, filters, cursor=cursor, limit=limit)
