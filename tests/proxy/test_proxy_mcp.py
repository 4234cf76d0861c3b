"""The remote MCP proxy: an MCP client with only a run grant talks to the sandbox's MCP server.

The official `mcp` SDK's client speaks streamable HTTP to `/v1/mcp/{provider}`; the proxy forwards
each JSON-RPC exchange with the user's token for that server (issued by the server's own
authorization server, with the server as its audience). The grant narrows the tools; a token the
server stops accepting is refreshed and the call retried; a call needing more scopes comes back as a
JSON-RPC error naming them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from fixtures.run_grants import mint_grant
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError
from proxy_harness import TENANT, ProxyHarness, proxy_settings, running_proxy
from vault_harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    SandboxServer,
    VaultHarness,
    running_vault,
    vault_settings,
    write_keyring,
)

PROVIDER = "sandbox_mcp_tools"


def _definition_dir(root: Path, sandbox_url: str) -> Path:
    server = f"{sandbox_url}/mcp/tools/mcp"
    directory = root / "providers"
    directory.mkdir()
    (directory / f"{PROVIDER}.yaml").write_text(
        json.dumps(
            {
                "id": PROVIDER,
                "name": "Sandbox MCP server (tools)",
                "category": "testing",
                "auth": "mcp_oauth",
                "mcp_server_url": server,
                "oauth": {
                    "authorize_url": f"{sandbox_url}/mcp/tools/as/authorize",
                    "token_url": f"{sandbox_url}/mcp/tools/as/token",
                    "pkce": "required",
                    "authorize_params": {"resource": server},
                    "token_params": {"resource": server},
                    "scopes": {
                        "default": ["tools:read"],
                        "available": {"tools:read": "Use read tools", "tools:write": "Use write tools"},
                    },
                },
                "refresh": {"rotating": True},
            }
        )
    )
    return directory


@pytest_asyncio.fixture(loop_scope="session")
async def mcp_stack(
    nats_url: str, database_url: str, sandbox: SandboxServer, tmp_path: Path
) -> AsyncIterator[tuple[VaultHarness, ProxyHarness]]:
    sandbox.state.register_client(
        CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI], profiles=["mcp:tools"]
    )
    providers = _definition_dir(tmp_path, sandbox.url)
    settings = vault_settings(
        nats_url,
        database_url,
        sandbox.url,
        write_keyring(tmp_path / "k.json"),
        provider_dirs=[providers],
        report_refresh_min_interval_seconds=0,
    )
    async with running_vault(settings, sandbox) as vault:
        await vault.put_app(PROVIDER)
        async with running_proxy(proxy_settings(nats_url, sandbox.url, provider_dirs=[providers])) as proxy:
            yield vault, proxy


async def _session_call(proxy: ProxyHarness, grant: str, tool: str) -> tuple[list[str], object]:
    """tools/list and one tools/call through the official SDK's client; an error reply is returned."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {grant}"})
    url = f"{proxy.url}/v1/mcp/{PROVIDER}"
    async with (
        http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(*streams[:2]) as session,
    ):
        await session.initialize()
        tools = [t.name for t in (await session.list_tools()).tools]
        try:
            result: object = await session.call_tool(tool, {"text": "hi"})
        except MCPError as error:
            result = error
        return tools, result


async def test_an_mcp_client_calls_tools_with_only_a_grant(mcp_stack) -> None:  # type: ignore[no-untyped-def]
    vault, proxy = mcp_stack
    await vault.connect(PROVIDER, user="alice", scopes=["tools:read"])
    grant = mint_grant(TENANT, "alice", [PROVIDER], run_id="run-mcp")
    tools, result = await _session_call(proxy, grant, "whoami")
    assert {"whoami", "echo"} <= set(tools)
    who = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert who["sub"] == "alice" and who["aud"].endswith("/mcp/tools/mcp")
    records = [r for r in await proxy.call_records() if r.run_id == "run-mcp"]
    assert {r.detail.get("mcp_method") for r in records} >= {"initialize", "tools/list", "tools/call"}
    assert [r.tool for r in records if r.detail.get("mcp_method") == "tools/call"] == ["whoami"]


async def test_the_grant_narrows_the_tools(mcp_stack) -> None:  # type: ignore[no-untyped-def]
    vault, proxy = mcp_stack
    await vault.connect(PROVIDER, user="alice", scopes=["tools:read"])
    grant = mint_grant(TENANT, "alice", [PROVIDER], run_id="run-narrow", tools={PROVIDER: ["whoami"]})
    tools, refused = await _session_call(proxy, grant, "echo")
    assert tools == ["whoami"]  # tools/list leaves out what the grant does not allow
    assert isinstance(refused, MCPError) and "does not allow the tool 'echo'" in str(refused)


async def _rpc(proxy: ProxyHarness, grant: str, method: str, params: dict[str, object]) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    headers = {"Authorization": f"Bearer {grant}", "Accept": "application/json, text/event-stream"}
    return await proxy.http.post(f"{proxy.url}/v1/mcp/{PROVIDER}", json=body, headers=headers)


async def test_refused_tools_more_scopes_and_refreshed_tokens(mcp_stack) -> None:  # type: ignore[no-untyped-def]
    vault, proxy = mcp_stack
    await vault.connect(PROVIDER, user="alice", scopes=["tools:read"])
    narrowed = mint_grant(TENANT, "alice", [PROVIDER], run_id="run-rpc", tools={PROVIDER: ["whoami"]})
    refused = await _rpc(proxy, narrowed, "tools/call", {"name": "create_note", "arguments": {}})
    assert refused.status_code == 200 and refused.headers["grantline-error"] == "tool_not_allowed"
    assert (
        refused.json()["id"] == 7 and refused.json()["error"]["data"]["grantline_error"] == "tool_not_allowed"
    )
    grant = mint_grant(TENANT, "alice", [PROVIDER], run_id="run-rpc")
    step_up = await _rpc(proxy, grant, "tools/call", {"name": "create_note", "arguments": {"text": "x"}})
    assert step_up.headers["grantline-error"] == "insufficient_scope"
    assert "tools:write" in step_up.json()["error"]["message"]
    # The proxy reported the step-up: the connection is marked as lacking the scope, for the user's
    # next re-authorization (and for satisfaction).
    marked = await vault.sql(
        "SELECT missing_scopes FROM vault.connections WHERE tenant_id = :t AND provider = :p AND owner = :o",
        t=TENANT,
        p=PROVIDER,
        o="user:alice",
    )
    assert [list(row.missing_scopes) for row in marked] == [["tools:write"]]
    # The server stops accepting the token: refreshed through the vault, the call retried once.
    state = vault.sandbox.state
    with state.lock:
        live = [t.value for t in state.tokens.values() if t.kind == "access_token" and not t.revoked]
    for value in live:
        state.revoke_token(value)
    ok = await _rpc(proxy, grant, "tools/call", {"name": "whoami", "arguments": {}})
    assert ok.status_code == 200 and "result" in ok.json(), ok.text
    other = mint_grant(TENANT, "alice", ["sandbox"], run_id="run-rpc")
    assert (await _rpc(proxy, other, "tools/list", {})).status_code == 403  # not in the grant
