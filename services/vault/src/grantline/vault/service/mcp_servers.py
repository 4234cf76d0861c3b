"""Remote MCP servers a tenant adds by URL: discover, register, keep as a tenant provider.

Every fetch goes through the vault's provider client (public https addresses only outside
development, no redirects, size and time limits); every URL discovery produced is checked the same
way before it is kept, including the ones only a browser will visit. The result is an ordinary
tenant provider (`auth: mcp_oauth`, the catalogue schema with an `mcp` section) plus a provider app
holding the client Grantline registered; a DCR client secret is sealed like any provider-app secret.
Credentials are per provider, and a provider is one MCP server at one issuer: a client id or token
from one authorization server is never sent to another.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault_admin import (
    AddMcpServerRequest,
    McpServerInfo,
    PutProviderAppRequest,
    PutTenantProviderRequest,
    TenantProviderInfo,
)
from grantline.providers.definition import McpRegistration
from grantline.providers.mcp_discovery import (
    AuthorizationServer,
    DiscoveryStep,
    McpDiscoveryError,
    ProtectedResource,
    authorization_server_metadata_urls,
    canonical_server_uri,
    challenge_scopes,
    check_authorization_server_metadata,
    check_resource_metadata,
    choose_registration,
    every_discovered_url,
    mcp_definition,
    parse_bearer_challenge,
    provider_id_for,
    registration_request,
    resource_metadata_urls,
)
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.adapters.provider_client import ProviderClient, ProviderUnavailable
from grantline.vault.adapters.provider_http import ProviderResponse
from grantline.vault.adapters.url_guard import UnsafeProviderUrl, check_provider_url
from grantline.vault.service import provider_apps, tenant_providers
from grantline.vault.service.context import VaultContext

_PROBE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "grantline", "version": "1"},
    },
}
_ACCEPT_MCP = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
_ACCEPT_JSON = {"Accept": "application/json"}

log = logging.getLogger(__name__)


class _Discovery:
    """One discovery run: the vault's guarded client and the address policy it runs under."""

    def __init__(self, client: ProviderClient, *, allow_private: bool) -> None:
        self._client = client
        self._allow_private = allow_private

    def check(self, step: DiscoveryStep, url: str) -> None:
        try:
            check_provider_url(url, allow_private=self._allow_private)
        except UnsafeProviderUrl as error:
            raise McpDiscoveryError(step, f"refused URL: {error}") from None

    async def call(
        self, step: DiscoveryStep, method: Any, url: str, headers: dict[str, str], body: Any = None
    ) -> ProviderResponse:
        self.check(step, url)
        try:
            return await self._client.discovery_call(
                method, url, headers=headers, json_body=body, resend_safe=method == "GET"
            )
        except ProviderUnavailable as error:
            raise McpDiscoveryError(step, f"{url} could not be fetched: {error}") from None

    async def first_json(self, step: DiscoveryStep, urls: list[str]) -> tuple[str, Any]:
        """The first URL answering 200 with JSON, in order; 404s and the like move on to the next."""
        for url in urls:
            response = await self.call(step, "GET", url, _ACCEPT_JSON)
            if response.status_code == 200:
                try:
                    return url, json.loads(response.body)
                except ValueError:
                    raise McpDiscoveryError(step, f"{url} did not answer JSON") from None
        raise McpDiscoveryError(step, "no metadata document at " + ", ".join(urls))

    async def probe(self, server_uri: str) -> dict[str, str]:
        response = await self.call("probe", "POST", server_uri, _ACCEPT_MCP, _PROBE)
        if response.status_code not in (401, 403):
            raise McpDiscoveryError(
                "probe", f"the server answered {response.status_code}, not 401: it does not ask for OAuth"
            )
        return parse_bearer_challenge(response.headers.get("www-authenticate"))

    async def resource(self, server_uri: str, challenge: dict[str, str]) -> ProtectedResource:
        url, document = await self.first_json(
            "resource_metadata", resource_metadata_urls(server_uri, challenge)
        )
        return check_resource_metadata(document, server_uri, url)

    async def authorization_server(self, issuer: str) -> AuthorizationServer:
        step: DiscoveryStep = "authorization_server_metadata"
        self.check(step, issuer)
        _, document = await self.first_json(step, authorization_server_metadata_urls(issuer))
        return check_authorization_server_metadata(document, issuer)

    async def register(
        self, server: AuthorizationServer, request: AddMcpServerRequest
    ) -> tuple[str, str | None]:
        """RFC 7591: the registered client id and secret (None for a public client)."""
        assert server.registration_endpoint is not None
        body = registration_request(
            server, redirect_uri=request.redirect_uri, client_name=request.client_name
        )
        response = await self.call("registration", "POST", server.registration_endpoint, _ACCEPT_MCP, body)
        try:
            reply = json.loads(response.body)
        except ValueError:
            reply = None
        if response.status_code not in (200, 201) or not isinstance(reply, dict):
            error = reply.get("error") if isinstance(reply, dict) else None
            raise McpDiscoveryError(
                "registration", f"registration refused ({response.status_code} {error or ''})"
            )
        client_id, secret = reply.get("client_id"), reply.get("client_secret")
        if not isinstance(client_id, str) or not client_id:
            raise McpDiscoveryError("registration", "the registration reply has no client_id")
        return client_id, secret if isinstance(secret, str) and secret else None


async def _kept_registration(
    ctx: VaultContext, tenant_id: str, provider: str
) -> tuple[dict[str, Any], str] | None:
    """The stored MCP section and client id of a server kept under `provider`, if any."""
    async with ctx.transaction() as conn:
        stored = await tenant_provider_rows.definition(conn, tenant_id, provider)
        app = await app_rows.get(conn, tenant_id, provider)
    if not stored or not isinstance(stored.get("mcp"), dict) or app is None or not app.enabled:
        return None
    return stored["mcp"], app.client_id


async def _discover(
    ctx: VaultContext, request: AddMcpServerRequest
) -> tuple[dict[str, Any], str | None, SecretStr | None]:
    """The definition to keep, the client id and secret to use (None, None: keep the stored client)."""
    discovery = _Discovery(ctx.providers, allow_private=ctx.settings.allow_private_provider_urls)
    server_uri = canonical_server_uri(request.url)
    challenge = await discovery.probe(server_uri)
    resource = await discovery.resource(server_uri, challenge)
    # The first authorization server listed is the one used (the spec leaves the choice to the client).
    server = await discovery.authorization_server(resource.authorization_servers[0])
    for url in every_discovered_url(resource, server):
        discovery.check("authorization_server_metadata", url)
    provider_id = request.provider or provider_id_for(request.name, server_uri)
    kept = (
        await _kept_registration(ctx, request.tenant_id, provider_id)
        if request.client_id is None and not request.reregister
        else None
    )
    client_id: str | None
    secret: SecretStr | None = request.client_secret
    registration: McpRegistration
    if (
        kept is not None
        and kept[0].get("issuer") == server.issuer
        and kept[0].get("registration")
        in (
            "dynamic",
            "preregistered",
        )
    ):
        # A registration is bound to its issuer: the same authorization server keeps the client it gave.
        registration, client_id, secret = kept[0]["registration"], None, None
    elif kept is not None and kept[0].get("registration") == "preregistered":
        raise McpDiscoveryError(
            "registration",
            "the server now names another authorization server; give a client registered there",
        )
    else:
        registration = choose_registration(server, preregistered=request.client_id is not None)
        if registration == "preregistered":
            client_id = request.client_id
        elif registration == "client_metadata_document":
            client_id, secret = request.client_metadata_url, None
        else:
            client_id, registered_secret = await discovery.register(server, request)
            secret = SecretStr(registered_secret) if registered_secret else None
    definition = mcp_definition(
        provider_id=provider_id,
        name=request.name or server_uri,
        resource=resource,
        server=server,
        registration=registration,
        scopes=challenge_scopes(challenge, resource),
        discovered_at=datetime.now(UTC).isoformat(),
    )
    definition["mcp"] |= {
        "redirect_uri": request.redirect_uri,
        "client_metadata_url": request.client_metadata_url,
    }
    return definition, client_id, secret


async def add_mcp_server(ctx: VaultContext, request: AddMcpServerRequest) -> McpServerInfo | ErrorReply:
    """Discover and register; keep the definition and its client. Adding the same URL again rediscovers."""
    if request.provider is not None:
        async with ctx.single_statement(wake_relay=False) as conn:
            stored = await tenant_provider_rows.definition(conn, request.tenant_id, request.provider)
        if not stored or not isinstance(stored.get("mcp"), dict):
            # Rediscovery may only refresh a server kept as one, never take over another provider's id.
            return ErrorReply.of(ErrorCode.NOT_FOUND, f"no MCP server {request.provider!r} to rediscover")
    try:
        definition, client_id, secret = await _discover(ctx, request)
    except McpDiscoveryError as error:
        return ErrorReply.of(
            ErrorCode.INVALID_REQUEST, f"MCP discovery failed at {error.step}: {error.message}"[:1900]
        )
    kept = await tenant_providers.put_provider(
        ctx, PutTenantProviderRequest(tenant_id=request.tenant_id, definition=definition, actor=request.actor)
    )
    if not isinstance(kept, TenantProviderInfo):
        return kept
    if client_id is not None:
        app = await provider_apps.put_app(
            ctx,
            PutProviderAppRequest(
                tenant_id=request.tenant_id,
                provider=definition["id"],
                client_id=client_id,
                # A metadata-document client is public: an empty secret replaces any stored one.
                client_secret=secret if secret is not None else SecretStr(""),
                scopes=definition["oauth"]["scopes"]["default"],
                actor=request.actor,
            ),
        )
        if isinstance(app, ErrorReply):
            return app
    else:
        registered = await _kept_registration(ctx, request.tenant_id, definition["id"])
        client_id = registered[1] if registered is not None else ""
    mcp = definition["mcp"]
    return McpServerInfo(
        tenant_id=request.tenant_id,
        provider=definition["id"],
        server_url=definition["mcp_server_url"],
        issuer=mcp["issuer"],
        registration=mcp["registration"],
        scopes=definition["oauth"]["scopes"]["default"],
        scopes_supported=mcp["scopes_supported"],
        client_id=client_id,
        created=kept.created,
    )


# A client Grantline registered itself can be registered again; a pre-registered one is the admin's.
_REREGISTRABLE = ("dynamic", "client_metadata_document")


async def rediscover_after_refusal(
    ctx: VaultContext,
    tenant_id: str,
    stored: dict[str, Any],
    redirect_uri: str | None = None,
    client_metadata_url: str | None = None,
) -> str | None:
    """The server's authorization server answered `invalid_client` for the client Grantline registered:
    discover the server again and register anew, once. The new registration method, or None when the
    server is not one Grantline registered with itself, or the rediscovery failed (then nothing changed).
    """
    mcp = stored.get("mcp")
    if not isinstance(mcp, dict) or mcp.get("registration") not in _REREGISTRABLE:
        return None
    # Given by the gateway with a code exchange; else what the registration was made with.
    redirect_uri = redirect_uri or mcp.get("redirect_uri")
    client_metadata_url = client_metadata_url or mcp.get("client_metadata_url")
    if not redirect_uri or not client_metadata_url:
        return None  # kept before these were recorded: adding the server again registers anew
    request = AddMcpServerRequest(
        tenant_id=tenant_id,
        url=stored.get("mcp_server_url") or mcp.get("resource", ""),
        name=stored.get("name"),
        provider=stored["id"],
        client_metadata_url=client_metadata_url,
        redirect_uri=redirect_uri,
        reregister=True,
        actor="vault",
    )
    added = await add_mcp_server(ctx, request)
    if isinstance(added, ErrorReply):
        log.warning("MCP rediscovery after invalid_client failed", extra={"provider": stored["id"]})
        return None
    log.info(
        "MCP server rediscovered after invalid_client",
        extra={"provider": added.provider, "registration": added.registration},
    )
    return added.registration
