"""`/v1/connections`: start OAuth flows, store API-key connections, list, read and revoke (via the vault)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from grantline.auth_gateway.entrypoints.http.context import CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import connections, rate_limits
from grantline.auth_gateway.service.views import (
    ConnectionPage,
    ConnectionView,
    InitiateIn,
    UserId,
    connection_view,
)

router = APIRouter(prefix="/v1/connections", tags=["connections"], responses=PROBLEM_RESPONSES)

ConnectionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class InitiateOut(BaseModel):
    authorize_url: str
    expires_at: datetime
    connection_id: str
    reauthorize: bool
    scopes: list[str]
    # The provider the connection is for (a catalogue MCP entry connects as the tenant's discovered server).
    provider: str


class ApiKeyConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    workspace: bool = False
    provider: str = Field(min_length=1, max_length=64)
    fields: dict[Annotated[str, Field(max_length=64)], Annotated[SecretStr, Field(max_length=4096)]] = Field(
        max_length=20, description="the values the provider's definition asks for (write-only)"
    )
    name: str | None = Field(default=None, max_length=200)
    shared: bool = Field(
        default=False,
        description="with workspace: this key serves every user of the tenant who has no key of their own",
    )


class RemovedView(BaseModel):
    connection_id: str
    removed: bool = True


class RevokedView(BaseModel):
    connection_id: str
    status: Literal["revoked"] = "revoked"


@router.post("/initiate", response_model=InitiateOut, summary="Start an OAuth authorization")
async def initiate(gw: GatewayDep, caller: CallerDep, body: InitiateIn) -> InitiateOut:
    """The URL to send the user's browser to; the flow ends at `return_to` with its outcome."""
    await rate_limits.admit(gw.runtime, gw.limits.initiate_per_tenant, caller.tenant_id)
    async with gw.runtime.driver_transaction() as conn:
        started = await gw.flow.initiate(conn, caller, body.flow_input())
    return InitiateOut(
        authorize_url=started.authorize_url,
        expires_at=started.expires_at,
        connection_id=started.connection_id,
        reauthorize=started.reauthorize,
        scopes=started.scopes,
        provider=started.provider,
    )


@router.post(
    "/api-key", response_model=ConnectionView, status_code=201, summary="Store an API-key connection"
)
async def store_api_key(gw: GatewayDep, caller: CallerDep, body: ApiKeyConnectionIn) -> ConnectionView:
    """Hand the key to the vault (it is never returned); fields are checked against the definition."""
    return await connections.store_api_key_connection(
        gw,
        caller,
        provider=body.provider,
        fields=body.fields,
        user_id=body.user_id,
        workspace=body.workspace,
        name=body.name,
        shared=body.shared,
    )


@router.get("", response_model=ConnectionPage, summary="List connections")
async def list_connections(
    gw: GatewayDep,
    caller: CallerDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    workspace: bool = False,
    provider: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: Literal["pending", "active", "reauth_required", "revoked"] | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConnectionPage:
    """Connections with status, scopes, account, expiry and last refresh; never a secret."""
    return await connections.list_connections(
        gw,
        caller,
        user_id=user_id,
        workspace=workspace,
        provider=provider,
        status=status,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{connection_id}", response_model=ConnectionView, summary="Read a connection")
async def get_connection(gw: GatewayDep, caller: CallerDep, connection_id: ConnectionId) -> ConnectionView:
    """One connection's metadata."""
    return connection_view(await connections.visible_connection(gw, caller, connection_id))


@router.put(
    "/{connection_id}/default", response_model=ConnectionView, summary="Make a connection the default"
)
async def set_default_connection(
    gw: GatewayDep, caller: CallerDep, connection_id: ConnectionId
) -> ConnectionView:
    """Resolves that name no connection use this one for its owner and provider (it must be active)."""
    return await connections.set_default_connection(gw, caller, connection_id)


@router.post(
    "/{connection_id}/remove", response_model=RemovedView, summary="Remove a revoked connection for good"
)
async def remove_connection(gw: GatewayDep, caller: CallerDep, connection_id: ConnectionId) -> RemovedView:
    """Only a revoked connection (`409` otherwise): it disappears from lists and pages."""
    await connections.remove_connection(gw, caller, connection_id)
    return RemovedView(connection_id=connection_id)


@router.delete("/{connection_id}", response_model=RevokedView, summary="Revoke a connection")
async def revoke_connection(
    gw: GatewayDep,
    caller: CallerDep,
    connection_id: ConnectionId,
    reason: Literal["user", "admin"] | None = None,
) -> RevokedView:
    """Delete its secrets, tell the provider where it can, emit `connections.revoked`."""
    await connections.revoke_connection(gw, caller, connection_id, reason=reason)
    return RevokedView(connection_id=connection_id)
