"""The secrets rule for MCP servers: a canary the sandbox puts in every code, token and registered
client secret appears in no gateway response, no log record, no event, and no readable column of the
gateway's or the vault's tables, through discovery, DCR, a pre-registered secret, connect, resolve,
step-up report, refresh and revocation."""

import logging

import httpx
import pytest
from fixtures.waiting import wait_for_async
from gateway_flow import count, stream_events
from gateway_support import KEY_A, bearer, new_user
from mcp_support import (
    add_server,
    call_tool,
    connect_server,
    refresh,
    report_insufficient_scope,
    resolve,
    server_url,
)
from sqlalchemy import text

from grantline.auth_gateway.adapters.tables import outbox
from grantline.contract import vault

CANARY = "CANARYmcp5q"


async def readable_column_values(runtime, schema: str) -> list[str]:
    """Every text, JSON and array value of a schema's tables (sealed bytea columns are ciphertext)."""
    async with runtime.sessions() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = :s"
                    " AND data_type IN ('text', 'character varying', 'jsonb', 'ARRAY')"
                ),
                {"s": schema},
            )
        ).all()
        values = []
        for table, column in columns:
            rows = await session.execute(text(f'SELECT "{column}"::text FROM {schema}."{table}"'))
            values.extend(value for (value,) in rows if value)
    return values


async def test_no_mcp_secret_leaves_through_responses_logs_events_or_columns(
    stack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    responses: list[str] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(f"{response.status_code} {response.headers!r} {response.text}")

    stack.client.event_hooks["response"].append(keep)
    stack.sandbox.canary = CANARY
    stack.sandbox.mcp.allow_plain_http = True
    stack.sandbox.mcp.set_switches("canary", cimd=False)
    added = await add_server(stack, "canary")  # DCR: the registered secret carries the canary
    assert added.status_code == 201, added.text
    found = added.json()
    assert CANARY in stack.sandbox.clients[found["client_id"]].client_secret
    stack.sandbox.mcp.set_switches("prereg", cimd=False, dcr=False)
    secret = f"sbx_cs_{CANARY}_prereg"
    stack.sandbox.register_client(
        "prereg-client",
        secret,
        redirect_uris=["http://gateway.test/v1/oauth/callback"],
        profiles=["mcp:prereg"],
    )
    assert (
        await add_server(stack, "prereg", client_id="prereg-client", client_secret=secret)
    ).status_code == 201

    user = new_user()
    outcome = await connect_server(stack, found["provider"], user)
    assert outcome["status"] == "connected", outcome
    reply = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply) and CANARY in reply.access_token.get_secret_value()
    forbidden = await call_tool(
        server_url(stack, "canary"), reply.access_token.get_secret_value(), "create_note"
    )
    assert forbidden.status_code == 403
    await report_insufficient_scope(
        stack, found["provider"], user, stack.tenant_a, outcome["connection_id"], ["tools:write"]
    )
    refreshed = await refresh(stack, outcome["connection_id"])
    assert isinstance(refreshed, vault.RefreshReply)
    path = f"/v1/connections/{outcome['connection_id']}"
    assert (await stack.client.get(path, headers=bearer(KEY_A))).status_code == 200
    assert (await stack.client.delete(path, headers=bearer(KEY_A))).status_code == 200
    assert (await stack.client.get("/v1/mcp-servers", headers=bearer(KEY_A))).status_code == 200
    assert (
        await stack.client.delete(f"/v1/mcp-servers/{found['provider']}", headers=bearer(KEY_A))
    ).status_code == 204

    async def relayed() -> bool:
        return await count(stack, outbox) == 0

    await wait_for_async(relayed)
    assert responses and not [r for r in responses if CANARY in r]
    # The test's own client logs the callback URL it calls (with the code): that line is not the gateway's.
    ours = [r for r in caplog.records if r.name == "httpx" and "http://gateway.test/" in r.getMessage()]
    leaked = [
        r
        for r in caplog.records
        if r not in ours and (CANARY in r.getMessage() or CANARY in repr(r.__dict__))
    ]
    assert not leaked, [r.getMessage() for r in leaked]
    events = [str(e) for stream in ("CONNECTIONS", "AUDIT") for e in await stream_events(stack, stream)]
    assert events and not [e for e in events if CANARY in e]
    assert not [v for v in await readable_column_values(stack.runtime, "gateway") if CANARY in v]
    assert not [v for v in await readable_column_values(stack.vault, "vault") if CANARY in v]
