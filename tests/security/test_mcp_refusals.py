# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Hostile or broken MCP servers and authorization servers: every refusal the MCP profile asks for.

The gateway and the vault run as their own NATS users on the real permission file; the sandbox plays
the MCP servers, one switch per misbehaviour. Each refusal is a clear problem (naming the discovery
step) or a refused callback, and stores or sends nothing.
"""

import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
from secured_gateway_stack import (  # noqa: F401 - fixtures
    KEY_A,
    _provider_servers,
    bearer,
    secured_stack,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth_gateway"))
from fixtures.run_grants import mint_grant
from gateway_flow import query
from gateway_support import CATALOGUE_LOADERS, cached_load_catalogue, common_settings, running_stack
from mcp_support import (
    add_server,
    call_tool,
    connect_server,
    resolve,
    serve_client_metadata_from_gateway,
    server_url,
)
from pydantic import SecretStr

from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
from grantline.contract import vault
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.contract.vault_admin import AddMcpServerRequest
from grantline.providers.mcp_discovery import McpDiscoveryError
from grantline.runtime.nats.secret_wire import request_with_secrets
from grantline.vault.adapters.provider_client import ProviderClient
from grantline.vault.adapters.provider_http import transport_for
from grantline.vault.service.mcp_servers import _discover
from grantline.vault.settings import VaultSettings


async def _nothing_stored(stack) -> None:
    listed = await stack.client.get("/v1/mcp-servers", headers=bearer(KEY_A))
    assert listed.json()["mcp_servers"] == []
    assert await stack.vault_rows("SELECT 1 FROM vault.provider_apps") == []


@pytest.mark.parametrize(
    ("switch", "message"),
    [("wrong_issuer", "issuer mismatch"), ("no_s256", "S256")],
)
async def test_metadata_with_another_issuer_or_without_s256_is_refused(secured_stack, switch, message):
    stack = secured_stack
    stack.sandbox.mcp.set_switches("bad", **{switch: True})
    refused = await add_server(stack, "bad")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "mcp_discovery_failed" and problem["step"] == "authorization_server_metadata"
    assert message in problem["detail"]
    await _nothing_stored(stack)
    with stack.sandbox.lock:
        assert not [r for r in stack.sandbox.requests if r.endpoint in ("register", "authorize", "token")]


async def test_an_authorization_response_with_another_iss_is_refused(secured_stack):
    stack = secured_stack
    serve_client_metadata_from_gateway(stack)
    found = (await add_server(stack, "mixup")).json()
    stack.sandbox.mcp.set_switches("mixup", wrong_iss=True)
    outcome = await connect_server(stack, found["provider"], "victim")
    assert outcome["status"] == "error" and outcome["error"] == "issuer_mismatch", outcome
    with stack.sandbox.lock:
        assert not [r for r in stack.sandbox.requests if r.endpoint == "token"]
    assert await stack.vault_rows("SELECT 1 FROM vault.connections WHERE status = 'active'") == []


@pytest.fixture
async def stack(nats_url, database_url, tmp_path, _provider_servers, monkeypatch):
    """Vault and gateway on an open NATS (this test resolves as a runner would, from the test)."""
    _provider_servers.reset()
    for target in CATALOGUE_LOADERS:
        monkeypatch.setattr(target, cached_load_catalogue)
    tenant_a = ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    async with running_stack(nats_url, database_url, tmp_path, _provider_servers) as running:
        running.tenant_a = tenant_a
        yield running


async def test_credentials_from_one_authorization_server_never_reach_another(stack):
    for server in ("srva", "srvb"):
        stack.sandbox.mcp.set_switches(server, cimd=False)
    stack.sandbox.mcp.allow_plain_http = True
    a = (await add_server(stack, "srva")).json()
    b = (await add_server(stack, "srvb")).json()
    assert a["client_id"] != b["client_id"] and a["issuer"] != b["issuer"]
    user = "alice-mcp"
    for found in (a, b):
        started = await stack.client.post(
            "/v1/connections/initiate",
            headers=bearer(KEY_A),
            json={"user_id": user, "provider": found["provider"], "return_to": "http://127.0.0.1:3000/done"},
        )
        url = started.json()["authorize_url"]
        assert (
            url.startswith(f"{found['issuer']}/authorize") and query(url)["client_id"] == found["client_id"]
        )
        assert (await connect_server(stack, found["provider"], user))["status"] == "connected"
    token_a = await resolve(stack, a["provider"], user, stack.tenant_a)
    assert isinstance(token_a, vault.ResolveReply) and token_a.mcp_server_url == server_url(stack, "srva")
    # A token from server A's authorization server, offered to server B, is refused there.
    offered = await call_tool(server_url(stack, "srvb"), token_a.access_token.get_secret_value(), "whoami")
    assert offered.status_code == 401 and 'error="invalid_token"' in offered.headers["www-authenticate"]
    # And Grantline never sent A's client id (or anything of A's) to B's authorization server.
    with stack.sandbox.lock:
        at_b = [r for r in stack.sandbox.requests if r.profile == "mcp:srvb"]
    assert at_b and all(a["client_id"] not in str(r.query) + str(r.body) + str(r.headers) for r in at_b)


class _PublicNamesToSandbox:
    """The vault's transport, with `mcp.public.test` served by the sandbox (a public name in a test)."""

    def __init__(self, sandbox_url: str, inner) -> None:
        self._sandbox = urlsplit(sandbox_url)
        self._inner = inner

    async def send(self, method, url, *, headers, body):
        parts = urlsplit(url)
        if parts.hostname == "mcp.public.test":
            url = urlunsplit((self._sandbox.scheme, self._sandbox.netloc, parts.path, parts.query, ""))
        return await self._inner.send(method, url, headers=headers, body=body)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def production_discovery(_provider_servers, nats_url, database_url):
    """Discovery as the vault runs it in production: public https addresses only."""
    _provider_servers.reset()
    settings = VaultSettings(**common_settings(nats_url, database_url), allow_private_provider_urls=False)
    client = ProviderClient(
        settings, transport=_PublicNamesToSandbox(_provider_servers.sandbox_url, transport_for(settings))
    )
    context = SimpleNamespace(providers=client, settings=settings)

    async def discover(url: str):
        request = AddMcpServerRequest(
            tenant_id="t1",
            url=url,
            client_metadata_url="https://gateway.example/v1/mcp/client-metadata/t1",
            redirect_uri="https://gateway.example/v1/oauth/callback",
        )
        return await _discover(context, request)  # type: ignore[arg-type]

    yield discover
    await client.aclose()
    _provider_servers.sandbox.public_url = None


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.7/mcp",
        "https://169.254.169.254/mcp",
        "https://[::1]/mcp",
        "http://mcp.public.test/mcp/a/mcp",
    ],
)
async def test_private_or_plain_http_server_urls_are_refused_in_production(production_discovery, url):
    with pytest.raises(McpDiscoveryError) as refused:
        await production_discovery(url)
    assert refused.value.step == "probe" and "refused URL" in refused.value.message


async def test_a_private_address_in_a_discovered_url_is_refused_in_production(
    production_discovery, _provider_servers
):
    # The server's own URL is public, but its 401 challenge points the metadata at an internal address.
    _provider_servers.sandbox.public_url = "https://10.1.2.3"
    with pytest.raises(McpDiscoveryError) as refused:
        await production_discovery("https://mcp.public.test/mcp/a/mcp")
    assert refused.value.step == "resource_metadata" and "not a public address" in refused.value.message
    with _provider_servers.sandbox.lock:
        assert not [r for r in _provider_servers.sandbox.requests if r.endpoint in ("register", "token")]


async def test_a_step_up_report_marks_only_the_grants_own_connection(stack):
    serve_client_metadata_from_gateway(stack)
    found = (await add_server(stack, "stepup")).json()
    provider = found["provider"]
    victim = await connect_server(stack, provider, "victim-user")
    await connect_server(stack, provider, "attacker-user")

    async def report(user: str, connection_id: str, scopes: list[str], grant_scopes=None):
        grant = mint_grant(stack.tenant_a, user, {provider: grant_scopes or []})
        return await request_with_secrets(
            stack.vault.nats,
            tenant_scoped(vault.SUBJECT_REPORT, stack.tenant_a),
            vault.ReportRequest(
                grant=SecretStr(grant),
                provider=provider,
                connection_id=connection_id,
                kind="insufficient_scope",
                scopes=scopes,
            ),
            vault.ResolveReply,
            timeout=15,
        )

    # Another user's connection: answered as a plain resolve of the reporter's own, nothing marked.
    assert isinstance(
        await report("attacker-user", victim["connection_id"], ["tools:write"]), vault.ResolveReply
    )
    # Scopes beyond the run grant, and junk that is no scope token, are refused.
    beyond = await report(
        "victim-user", victim["connection_id"], ["tools:write"], grant_scopes=["tools:read"]
    )
    assert isinstance(beyond, ErrorReply) and beyond.error.code == "forbidden"
    junk = await report("victim-user", victim["connection_id"], ['tools:write" admin'])
    assert isinstance(junk, ErrorReply) and junk.error.code == "invalid_request"
    rows = await stack.vault_rows(
        "SELECT missing_scopes FROM vault.connections WHERE id = :id", id=victim["connection_id"]
    )
    assert rows == [([],)]
