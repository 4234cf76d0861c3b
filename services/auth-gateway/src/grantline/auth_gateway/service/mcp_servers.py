"""Remote MCP servers a tenant adds by URL (`/v1/mcp-servers`), and the client metadata documents
Grantline publishes for them.

The vault does the discovery and registration (it owns provider definitions and every outbound call);
the gateway says where this tenant's Client ID Metadata Document lives and serves that document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from grantline.auth_gateway.adapters import tenant_store
from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.catalogue import TenantCatalogue
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem, from_error_reply, not_found
from grantline.contract import vault_admin
from grantline.contract.errors import ErrorReply
from grantline.providers.definition import ProviderDefinition
from grantline.providers.mcp_discovery import canonical_server_uri, client_metadata_document
from grantline.runtime.db.driver import DriverConnection

if TYPE_CHECKING:  # the gateway context builds the OAuth flow, which discovers catalogue MCP entries
    from grantline.auth_gateway.service.context import Gateway

# "MCP discovery failed at <step>: ..." from the vault: the step goes into the problem as its own field.
_FAILED_STEP = re.compile(r"^MCP discovery failed at ([a-z_]+): ")


class McpServerIn(BaseModel):
    """`POST /v1/mcp-servers`: the server URL, and a pre-registered client when the server needs one."""

    url: str = Field(
        min_length=8, max_length=2048, description="The MCP server URL (streamable HTTP endpoint)"
    )
    name: str | None = Field(default=None, min_length=1, max_length=100)
    client_id: str | None = Field(
        default=None, min_length=1, max_length=512, description="A client registered by hand (pre-registered)"
    )
    client_secret: SecretStr | None = Field(
        default=None, description="Its secret, if it has one (write-only)"
    )


class McpServerView(BaseModel):
    """What discovery found: the provider id to connect, issuer, how Grantline registered, scopes."""

    provider: str
    name: str
    server_url: str
    issuer: str
    registration: str
    scopes: list[str]
    scopes_supported: list[str] = []
    client_id: str | None = None


class McpServerListView(BaseModel):
    mcp_servers: list[McpServerView]


def client_metadata_url_for(public_url: str, tenant_id: str) -> str:
    """The client id Grantline uses for this tenant at servers that accept metadata documents."""
    return f"{public_url.rstrip('/')}/v1/mcp/client-metadata/{tenant_id}"


def client_metadata_url(gw: Gateway, tenant_id: str) -> str:
    return client_metadata_url_for(gw.settings.public_url, tenant_id)


def discovery_problem(reply: ErrorReply) -> Problem:
    """The problem for a failed `vault.mcp_servers.add`: 422 naming the step, else the usual mapping."""
    failed = _FAILED_STEP.match(reply.error.message)
    if failed is None:
        return from_error_reply(reply)
    return Problem(422, "mcp_discovery_failed", reply.error.message, extra={"step": failed.group(1)})


@dataclass(frozen=True)
class McpConnectContext:
    """What the OAuth flow needs to (re)discover an MCP server when a user connects it."""

    bus: Bus
    catalogue: TenantCatalogue
    public_url: str
    redirect_uri: str
    rediscover_after: timedelta

    def stale(self, definition: ProviderDefinition, now: datetime) -> bool:
        """Whether a discovered server's metadata is old enough to be fetched again."""
        found = definition.mcp.discovered_at if definition.mcp is not None else None
        if found is None:
            return definition.mcp is not None
        try:
            return now - datetime.fromisoformat(found) > self.rediscover_after
        except (TypeError, ValueError):
            return True

    async def discover(
        self, principal: Principal, url: str, name: str, provider: str | None = None
    ) -> ProviderDefinition:
        reply = await self.bus.ask_or_error(
            vault_admin.SUBJECT_MCP_SERVER_ADD,
            vault_admin.AddMcpServerRequest(
                tenant_id=principal.tenant_id,
                url=url,
                name=name,
                provider=provider,
                client_metadata_url=client_metadata_url_for(self.public_url, principal.tenant_id),
                redirect_uri=self.redirect_uri,
                actor=principal.actor,
            ),
            vault_admin.McpServerInfo,
        )
        if isinstance(reply, ErrorReply):
            raise discovery_problem(reply)
        return await self.catalogue.provider(principal.tenant_id, reply.provider)


async def server_to_connect(
    mcp: McpConnectContext, principal: Principal, definition: ProviderDefinition
) -> ProviderDefinition:
    """The definition a user connects: for a thin catalogue MCP entry the tenant's discovered server
    (discovered and registered the first time), for any discovered server a fresh discovery when the
    kept one is stale (same provider id; the registration is kept while the issuer is the same)."""
    now = datetime.now(UTC)
    if definition.discovered_at_connect:
        assert definition.mcp_server_url is not None
        target = canonical_server_uri(definition.mcp_server_url)
        own = next(
            (
                d
                for d in await mcp.catalogue.own_definitions(principal.tenant_id)
                if d.mcp and d.mcp_server_url == target
            ),
            None,
        )
        if own is None:
            return await mcp.discover(principal, definition.mcp_server_url, definition.name)
        definition = own
    if definition.mcp is not None and definition.mcp_server_url and mcp.stale(definition, now):
        return await mcp.discover(principal, definition.mcp_server_url, definition.name, definition.id)
    return definition


async def client_metadata(gw: Gateway, conn: DriverConnection, tenant_id: str) -> dict[str, Any]:
    """The tenant's Client ID Metadata Document (public; it names no secret)."""
    tenant = await tenant_store.tenant_by_id(conn, tenant_id)
    if tenant is None:
        raise not_found("client")
    return client_metadata_document(
        client_metadata_url(gw, tenant_id), redirect_uri=gw.settings.redirect_uri, client_name="Grantline"
    )


def _view(definition: dict[str, Any], client_id: str | None = None) -> McpServerView | None:
    mcp, oauth = definition.get("mcp"), definition.get("oauth") or {}
    if not isinstance(mcp, dict):
        return None
    return McpServerView(
        provider=definition["id"],
        name=definition.get("name", definition["id"]),
        server_url=definition.get("mcp_server_url", mcp.get("resource", "")),
        issuer=mcp.get("issuer", ""),
        registration=mcp.get("registration", ""),
        scopes=list(oauth.get("scopes", {}).get("default", [])),
        scopes_supported=list(mcp.get("scopes_supported", [])),
        client_id=client_id,
    )


async def add_mcp_server(gw: Gateway, caller: Principal, body: McpServerIn) -> McpServerView:
    """Have the vault discover and register the server; a problem names the step that failed."""
    reply = await gw.bus.ask_or_error(
        vault_admin.SUBJECT_MCP_SERVER_ADD,
        vault_admin.AddMcpServerRequest(
            tenant_id=caller.tenant_id,
            url=body.url,
            name=body.name,
            client_metadata_url=client_metadata_url(gw, caller.tenant_id),
            redirect_uri=gw.settings.redirect_uri,
            client_id=body.client_id,
            client_secret=body.client_secret,
            actor=caller.actor,
        ),
        vault_admin.McpServerInfo,
        with_secrets=True,
    )
    if isinstance(reply, ErrorReply):
        raise discovery_problem(reply)
    return McpServerView(
        provider=reply.provider,
        name=body.name or reply.server_url,
        server_url=reply.server_url,
        issuer=reply.issuer,
        registration=reply.registration,
        scopes=reply.scopes,
        scopes_supported=reply.scopes_supported,
        client_id=reply.client_id,
    )


async def list_mcp_servers(gw: Gateway, caller: Principal) -> McpServerListView:
    """The tenant's MCP servers (tenant providers with an `mcp` section)."""
    reply = await gw.bus.ask(
        vault_admin.SUBJECT_TENANT_PROVIDER_LIST,
        vault_admin.TenantProviderListRequest(tenant_id=caller.tenant_id),
        vault_admin.TenantProviderList,
    )
    views = [view for raw in reply.definitions if (view := _view(raw)) is not None]
    return McpServerListView(mcp_servers=views)


async def get_mcp_server(gw: Gateway, caller: Principal, provider: str) -> McpServerView:
    """One MCP server, or a 404."""
    reply = await gw.bus.ask(
        vault_admin.SUBJECT_TENANT_PROVIDER_GET,
        vault_admin.TenantProviderRef(tenant_id=caller.tenant_id, provider=provider),
        vault_admin.TenantProviderInfo,
    )
    view = _view(reply.definition)
    if view is None:
        raise not_found(f"MCP server {provider!r}")
    return view


async def delete_mcp_server(gw: Gateway, caller: Principal, provider: str) -> int:
    """Forget an MCP server: its client is disabled (connections revoked), then its definition goes."""
    await get_mcp_server(gw, caller, provider)
    revoked = 0
    app = await gw.bus.ask_or_error(
        vault_admin.SUBJECT_PROVIDER_APP_DELETE,
        vault_admin.ProviderAppDeleteRequest(
            tenant_id=caller.tenant_id, provider=provider, actor=caller.actor
        ),
        vault_admin.ProviderAppDeleted,
    )
    if isinstance(app, vault_admin.ProviderAppDeleted):
        revoked = app.revoked_connections
    await gw.bus.ask(
        vault_admin.SUBJECT_TENANT_PROVIDER_DELETE,
        vault_admin.TenantProviderRef(tenant_id=caller.tenant_id, provider=provider),
        vault_admin.TenantProviderDeleted,
    )
    return revoked
