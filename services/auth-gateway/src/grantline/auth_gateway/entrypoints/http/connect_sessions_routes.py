"""`/v1/connect-sessions`: a token that lets one end user's browser manage that user's connections."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service.connect_sessions import create_connect_session, session_scope
from grantline.auth_gateway.service.views import UserId
from grantline.contract.envelope import ProviderAppName, ProviderId

router = APIRouter(prefix="/v1/connect-sessions", tags=["connect sessions"], responses=PROBLEM_RESPONSES)


class ConnectSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    expires_in: int | None = Field(default=None, ge=60, le=86400, description="seconds (default 1800)")
    providers: list[ProviderId] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="the only providers the session lists and connects (default: every provider)",
    )
    provider_apps: dict[ProviderId, ProviderAppName] = Field(
        default_factory=dict,
        max_length=32,
        description="{provider: named app}: the session's new connections of these providers go through "
        "the tenant's named provider app; the others through the provider's default app. The end user "
        "cannot choose another.",
    )


class ConnectSessionOut(BaseModel):
    session_id: str
    token: str = Field(description="shown once; send as `Authorization: Bearer` (or open `connect_url`)")
    expires_at: datetime
    connect_url: str


@router.post("", response_model=ConnectSessionOut, status_code=201, summary="Create a connect session")
async def create(gw: GatewayDep, caller: AdminDep, body: ConnectSessionIn) -> ConnectSessionOut:
    """A short-lived token bound to one user: it may start flows, list and revoke for that user only."""
    scope = await session_scope(gw, caller.tenant_id, body.providers, body.provider_apps)
    # One insert: autocommit makes it the whole transaction.
    async with gw.runtime.single_statement(wake_relay=False) as conn:
        issued = await create_connect_session(
            conn,
            tenant_id=caller.tenant_id,
            user_id=body.user_id,
            expires_in=body.expires_in,
            default_ttl=gw.settings.connect_session_ttl_seconds,
            max_ttl=gw.settings.connect_session_max_ttl_seconds,
            public_url=gw.settings.public_url,
            providers=scope.providers,
            provider_apps=scope.provider_apps,
        )
    return ConnectSessionOut(
        session_id=issued.session_id,
        token=issued.token,
        expires_at=issued.expires_at,
        connect_url=issued.connect_url,
    )
