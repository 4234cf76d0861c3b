"""`/v1/mcp-servers`: remote MCP servers added by URL; `/v1/mcp/client-metadata/{tenant}`: the Client
ID Metadata Document authorization servers fetch (public, no secret in it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import mcp_servers
from grantline.auth_gateway.service.mcp_servers import McpServerIn, McpServerListView, McpServerView

router = APIRouter(tags=["mcp servers"], responses=PROBLEM_RESPONSES)

ProviderId = Annotated[
    str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="provider id of the MCP server")
]
TenantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="tenant id")]


@router.post(
    "/v1/mcp-servers", response_model=McpServerView, status_code=201, summary="Add a remote MCP server by URL"
)
async def add_mcp_server(gw: GatewayDep, caller: AdminDep, body: McpServerIn) -> McpServerView:
    """Discover the server (401 challenge, RFC 9728, RFC 8414), register (metadata document, DCR or the
    given client) and keep it as one of the tenant's providers. A 422 `mcp_discovery_failed` names the
    `step` that failed."""
    return await mcp_servers.add_mcp_server(gw, caller, body)


@router.get("/v1/mcp-servers", response_model=McpServerListView, summary="The tenant's MCP servers")
async def list_mcp_servers(gw: GatewayDep, caller: AdminDep) -> McpServerListView:
    return await mcp_servers.list_mcp_servers(gw, caller)


@router.get("/v1/mcp-servers/{provider}", response_model=McpServerView, summary="One MCP server")
async def get_mcp_server(gw: GatewayDep, caller: AdminDep, provider: ProviderId) -> McpServerView:
    return await mcp_servers.get_mcp_server(gw, caller, provider)


@router.delete("/v1/mcp-servers/{provider}", status_code=204, summary="Forget an MCP server")
async def delete_mcp_server(gw: GatewayDep, caller: AdminDep, provider: ProviderId) -> Response:
    """Its client is disabled and every connection to it revoked, then its definition is deleted."""
    await mcp_servers.delete_mcp_server(gw, caller, provider)
    return Response(status_code=204)


@router.get(
    "/v1/mcp/client-metadata/{tenant_id}",
    summary="Grantline's Client ID Metadata Document for a tenant (fetched by MCP authorization servers)",
    response_model=dict[str, Any],
)
async def client_metadata(gw: GatewayDep, tenant_id: TenantId) -> JSONResponse:
    async with gw.runtime.single_statement(wake_relay=False) as conn:
        document = await mcp_servers.client_metadata(gw, conn, tenant_id)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})
