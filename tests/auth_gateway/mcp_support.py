"""Driving a remote MCP server through the gateway and the vault, for the tests (sandbox MCP servers)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
from fixtures.run_grants import mint_grant
from gateway_flow import RETURN_TO, authorize, callback, query
from gateway_support import KEY_A, Stack, bearer
from pydantic import SecretStr

from grantline.contract import vault
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.runtime.nats.secret_wire import request_with_secrets


def serve_client_metadata_from_gateway(stack: Stack) -> None:
    """Let the sandbox's authorization servers fetch Client ID Metadata Documents from the gateway.

    The gateway app runs in the test's event loop (ASGI transport) while the sandbox answers in its
    own thread: the fetch is handed to the test's loop, which is free while the browser waits.
    """
    loop = asyncio.get_running_loop()

    async def fetch(url: str) -> httpx.Response:
        parts = urlsplit(url)
        future = asyncio.run_coroutine_threadsafe(stack.client.get(parts.path), loop)
        return await asyncio.wrap_future(future)

    stack.sandbox.mcp.fetch_client_metadata = fetch
    stack.sandbox.mcp.allow_plain_http = True  # the test gateway's public URL is http://gateway.test


def server_url(stack: Stack, server: str = "a") -> str:
    return f"{stack.sandbox_url}/mcp/{server}/mcp"


async def add_server(stack: Stack, server: str = "a", key: str = KEY_A, **extra: Any) -> httpx.Response:
    body = {"url": server_url(stack, server), "name": f"Sandbox {server}", **extra}
    return await stack.client.post("/v1/mcp-servers", headers=bearer(key), json=body)


async def connect_server(stack: Stack, provider: str, user: str, **extra: Any) -> dict[str, str]:
    """Initiate, authorize at the sandbox, call back; the outcome query the browser returns with."""
    started = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={"user_id": user, "provider": provider, "return_to": RETURN_TO, **extra},
    )
    assert started.status_code == 200, started.text
    authorize_url = started.json()["authorize_url"]
    params = query(authorize_url)
    assert params["code_challenge_method"] == "S256" and params["resource"].endswith("/mcp")
    outcome = await callback(stack, await authorize(stack, authorize_url))
    return {**outcome, "connection_id": started.json()["connection_id"]}


async def resolve(stack: Stack, provider: str, user: str, tenant: str) -> vault.ResolveReply | ErrorReply:
    """Resolve as a runner does, with a run grant for the user and the server's provider."""
    grant = mint_grant(tenant, user, [provider])
    return await request_with_secrets(
        stack.vault.nats,
        tenant_scoped(vault.SUBJECT_RESOLVE, tenant),
        vault.ResolveRequest(grant=SecretStr(grant), provider=provider),
        vault.ResolveReply,
        timeout=15,
    )


async def call_tool(url: str, token: str, tool: str, **arguments: Any) -> httpx.Response:
    """A tools/call on the MCP server, as an agent's MCP client sends it."""
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    async with httpx.AsyncClient() as client:
        return await client.post(url, json=message, headers={"Authorization": f"Bearer {token}"})


async def report_insufficient_scope(
    stack: Stack, provider: str, user: str, tenant: str, connection_id: str, scopes: list[str]
) -> vault.ResolveReply | ErrorReply:
    """What a runner sends after a 403 `insufficient_scope`: the scopes the server's challenge named."""
    grant = mint_grant(tenant, user, [provider])
    return await request_with_secrets(
        stack.vault.nats,
        tenant_scoped(vault.SUBJECT_REPORT, tenant),
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


async def refresh(
    stack: Stack, connection_id: str, tenant: str | None = None
) -> vault.RefreshReply | ErrorReply:
    """Have the vault refresh a connection now, as the refresher does."""
    return await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_REFRESH,
        vault.RefreshRequest(tenant_id=stack.tenant_a, connection_id=connection_id),
        vault.RefreshReply,
        timeout=15,
    )
