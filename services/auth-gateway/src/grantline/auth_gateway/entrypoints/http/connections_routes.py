"""`/v1/connections`: start OAuth flows, store API-key connections, list, read and revoke (via the vault)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from grantline.auth_gateway.entrypoints.http.context import CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service.oauth_flow import MAX_SCOPES, InitiateInput
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem, invalid, not_found
from grantline.common.contract import vault, vault_admin

router = APIRouter(prefix="/v1/connections", tags=["connections"], responses=PROBLEM_RESPONSES)

UserId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ConnectionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class InitiateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    workspace: bool = False
    provider: str = Field(min_length=1, max_length=64)
    scopes: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=MAX_SCOPES, description="default: the provider app's or the catalogue's"
    )
    return_to: str = Field(min_length=1, max_length=2048, description="must match the tenant's allow-list")
    connection_id: str | None = Field(
        default=None, max_length=64, description="re-authorize this connection (keeps its id and name)"
    )


class InitiateOut(BaseModel):
    authorize_url: str
    expires_at: datetime
    connection_id: str
    reauthorize: bool
    scopes: list[str]


class ApiKeyConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    workspace: bool = False
    provider: str = Field(min_length=1, max_length=64)
    fields: dict[Annotated[str, Field(max_length=64)], Annotated[SecretStr, Field(max_length=4096)]] = Field(
        max_length=20, description="the values the provider's definition asks for (write-only)"
    )
    name: str | None = Field(default=None, max_length=200)


class ConnectionView(BaseModel):
    connection_id: str
    owner: str
    user_id: str | None
    provider: str
    status: str
    scopes: list[str]
    account: str | None = None
    expires_at: datetime | None = None
    last_refreshed_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    is_default: bool = True
    name: str | None = None


class ConnectionPage(BaseModel):
    connections: list[ConnectionView]
    next_cursor: str | None = None


class RevokedView(BaseModel):
    connection_id: str
    status: Literal["revoked"] = "revoked"


def connection_view(info: vault.ConnectionInfo) -> ConnectionView:
    """The public view of a connection (metadata only)."""
    data = info.model_dump(exclude={"tenant_id"})
    user_id = info.owner.removeprefix("user:") if info.owner.startswith("user:") else None
    return ConnectionView(**data, user_id=user_id)


async def visible_connection(gw: GatewayDep, caller: Principal, connection_id: str) -> vault.ConnectionInfo:
    """A connection the caller may see; anything else (another tenant's, another user's) is a 404."""
    info = await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_GET,
        vault_admin.ConnectionRef(tenant_id=caller.tenant_id, connection_id=connection_id),
        vault.ConnectionInfo,
    )
    if info.tenant_id != caller.tenant_id or not caller.may_see(info.owner):
        raise not_found("connection")
    return info


@router.post("/initiate", response_model=InitiateOut, summary="Start an OAuth authorization")
async def initiate(gw: GatewayDep, caller: CallerDep, body: InitiateIn) -> InitiateOut:
    """The URL to send the user's browser to; the flow ends at `return_to` with its outcome."""
    async with gw.runtime.transaction() as session:
        started = await gw.flow.initiate(
            session,
            caller,
            InitiateInput(
                provider=body.provider,
                return_to=body.return_to,
                user_id=body.user_id,
                workspace=body.workspace,
                scopes=body.scopes,
                connection_id=body.connection_id,
            ),
        )
    return InitiateOut(
        authorize_url=started.authorize_url,
        expires_at=started.expires_at,
        connection_id=started.connection_id,
        reauthorize=started.reauthorize,
        scopes=started.scopes,
    )


@router.post(
    "/api-key", response_model=ConnectionView, status_code=201, summary="Store an API-key connection"
)
async def store_api_key(gw: GatewayDep, caller: CallerDep, body: ApiKeyConnectionIn) -> ConnectionView:
    """Hand the key to the vault (it is never returned); fields are checked against the definition."""
    owner = caller.owner_for(user_id=body.user_id, workspace=body.workspace)
    async with gw.runtime.sessions() as session:
        definition = await gw.catalogue.provider(session, caller.tenant_id, body.provider)
    if definition.api_key is None:
        raise invalid(f"provider {definition.id!r} uses OAuth: POST /v1/connections/initiate")
    expected = {field.id: field for field in definition.api_key.fields}
    missing = sorted(set(expected) - set(body.fields))
    unknown = sorted(set(body.fields) - set(expected))
    if missing or unknown:
        raise invalid(
            f"fields must be exactly: {', '.join(sorted(expected))}", missing=missing, unknown=unknown
        )
    for field_id, spec in expected.items():
        value = body.fields[field_id].get_secret_value()
        if not value.strip():
            raise invalid(f"field {field_id!r} is empty")
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            raise invalid(f"field {field_id!r} does not have the expected format")
    info = await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_API_KEY,
        vault_admin.StoreApiKeyRequest(
            tenant_id=caller.tenant_id,
            owner=owner,
            provider=definition.id,
            fields=body.fields,
            name=body.name,
            actor=caller.actor,
        ),
        vault.ConnectionInfo,
        with_secrets=True,
    )
    return connection_view(info)


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
    owner: str | None
    if caller.kind == "connect_session" or user_id or workspace:
        owner = caller.owner_for(user_id=user_id, workspace=workspace)
    else:
        owner = None  # the tenant key may list everything
    page = await gw.bus.ask(
        vault_admin.SUBJECT_CONNECTION_LIST,
        vault_admin.ListConnectionsRequest(
            tenant_id=caller.tenant_id,
            owner=owner,
            provider=provider,
            status=status,
            cursor=cursor,
            limit=limit,
        ),
        vault_admin.ConnectionList,
    )
    return ConnectionPage(
        connections=[connection_view(c) for c in page.connections if c.tenant_id == caller.tenant_id],
        next_cursor=page.next_cursor,
    )


@router.get("/{connection_id}", response_model=ConnectionView, summary="Read a connection")
async def get_connection(gw: GatewayDep, caller: CallerDep, connection_id: ConnectionId) -> ConnectionView:
    """One connection's metadata."""
    return connection_view(await visible_connection(gw, caller, connection_id))


@router.delete("/{connection_id}", response_model=RevokedView, summary="Revoke a connection")
async def revoke_connection(
    gw: GatewayDep,
    caller: CallerDep,
    connection_id: ConnectionId,
    reason: Literal["user", "admin"] | None = None,
) -> RevokedView:
    """Delete its secrets, tell the provider where it can, emit `connections.revoked`."""
    await visible_connection(gw, caller, connection_id)
    if caller.kind == "connect_session":
        if reason == "admin":
            raise Problem(403, "forbidden", "a connect session revokes as the user")
        reason = "user"
    await gw.bus.ask(
        vault.SUBJECT_REVOKE,
        vault.RevokeRequest(
            tenant_id=caller.tenant_id,
            connection_id=connection_id,
            reason=reason or "admin",
            actor=caller.actor,
        ),
        vault.OkReply,
    )
    return RevokedView(connection_id=connection_id)
