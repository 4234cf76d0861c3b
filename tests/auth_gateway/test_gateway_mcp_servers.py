"""A tenant adds a remote MCP server by URL alone; a user connects it; a runner calls its tools.

Everything real: the gateway and the vault on NATS and Postgres, the sandbox MCP server and its
authorization server on a real port (the vault discovers and registers over HTTP).
"""

from gateway_flow import query
from gateway_support import KEY_A, KEY_B, bearer, new_user
from mcp_support import (
    add_server,
    call_tool,
    connect_server,
    refresh,
    report_insufficient_scope,
    resolve,
    serve_client_metadata_from_gateway,
    server_url,
)
from sqlalchemy import text

from grantline.contract import vault
from grantline.contract.errors import ErrorReply
from grantline.providers.mcp_discovery import parse_bearer_challenge


async def test_client_metadata_document_path_end_to_end(stack):
    serve_client_metadata_from_gateway(stack)
    added = await add_server(stack)
    assert added.status_code == 201, added.text
    found = added.json()
    assert found["registration"] == "client_metadata_document"
    assert found["issuer"] == f"{stack.sandbox_url}/mcp/a/as"
    assert found["scopes"] == ["tools:read"] and "tools:write" in found["scopes_supported"]
    assert found["client_id"].endswith(f"/v1/mcp/client-metadata/{stack.tenant_a}")
    document = (await stack.client.get(f"/v1/mcp/client-metadata/{stack.tenant_a}")).json()
    assert document["client_id"] == found["client_id"] and document["token_endpoint_auth_method"] == "none"

    user = new_user()
    outcome = await connect_server(stack, found["provider"], user)
    assert outcome["status"] == "connected", outcome
    reply = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply), reply
    assert reply.mcp_server_url == server_url(stack)
    token = reply.access_token.get_secret_value()
    called = await call_tool(reply.mcp_server_url, token, "echo", text="hello")
    assert called.status_code == 200 and called.json()["result"]["content"][0]["text"] == "hello"

    # Step-up: a tool needing more scope answers 403; re-authorizing the same connection adds it.
    refused = await call_tool(reply.mcp_server_url, token, "create_note", text="x")
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    challenge = parse_bearer_challenge(refused.headers["www-authenticate"])
    foreign = await report_insufficient_scope(
        stack, found["provider"], user, stack.tenant_a, "someone-elses-connection", challenge["scope"].split()
    )
    assert isinstance(foreign, vault.ResolveReply)  # not the grant's connection: nothing marked
    reported = await report_insufficient_scope(
        stack, found["provider"], user, stack.tenant_a, outcome["connection_id"], challenge["scope"].split()
    )
    assert isinstance(reported, ErrorReply) and reported.error.code == "missing_scopes"
    assert "tools:write" in reported.error.message and "tools:read " not in reported.error.message
    path = f"/v1/connections/{outcome['connection_id']}"
    assert (await stack.client.get(path, headers=bearer(KEY_A))).json()["missing_scopes"] == ["tools:write"]
    stepped = await connect_server(
        stack, found["provider"], user, connection_id=outcome["connection_id"], scopes=["tools:write"]
    )
    assert stepped["status"] == "connected" and stepped["connection_id"] == outcome["connection_id"]
    assert (await stack.client.get(path, headers=bearer(KEY_A))).json()["missing_scopes"] == []
    wider = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(wider, vault.ResolveReply) and set(wider.scopes) == {"tools:read", "tools:write"}
    assert (
        await call_tool(server_url(stack), wider.access_token.get_secret_value(), "create_note", text="x")
    ).status_code == 200

    # Refresh sends `resource` again; the new token works.
    refreshed = await refresh(stack, outcome["connection_id"])
    assert isinstance(refreshed, vault.RefreshReply), refreshed
    with stack.sandbox.lock:
        refreshes = [
            r for r in stack.sandbox.requests if r.endpoint == "token" and r.grant_type == "refresh_token"
        ]
    assert refreshes and refreshes[-1].body["resource"] == server_url(stack) and refreshes[-1].status == 200

    # Revocation reaches the server's authorization server: the token stops working there.
    latest = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(latest, vault.ResolveReply)
    revoked = await stack.client.delete(f"/v1/connections/{outcome['connection_id']}", headers=bearer(KEY_A))
    assert revoked.status_code == 200, revoked.text
    assert (
        await call_tool(server_url(stack), latest.access_token.get_secret_value(), "echo", text="x")
    ).status_code == 401


async def test_dynamic_registration_path(stack):
    stack.sandbox.mcp.set_switches("dcr", cimd=False)
    stack.sandbox.mcp.allow_plain_http = True
    added = await add_server(stack, "dcr")
    assert added.status_code == 201, added.text
    found = added.json()
    assert found["registration"] == "dynamic" and found["client_id"].startswith("sbx_dcr_")
    with stack.sandbox.lock:
        registered = [r for r in stack.sandbox.requests if r.endpoint == "register"]
    assert registered[-1].body["application_type"] == "web"
    assert registered[-1].body["token_endpoint_auth_method"] == "client_secret_post"
    secret = stack.sandbox.clients[found["client_id"]].client_secret
    assert secret and secret not in added.text
    user = new_user()
    assert (await connect_server(stack, found["provider"], user))["status"] == "connected"
    reply = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply), reply
    assert (
        await call_tool(server_url(stack, "dcr"), reply.access_token.get_secret_value(), "whoami")
    ).status_code == 200


async def test_preregistered_client_path_and_listing(stack):
    stack.sandbox.mcp.set_switches("pre", cimd=False, dcr=False, oidc_only=True, prm_path_only=True)
    refused = await add_server(stack, "pre")
    assert refused.status_code == 422 and refused.json()["step"] == "registration"
    client = stack.sandbox.register_client(
        "pre-registered",
        "pre-secret",
        redirect_uris=["http://gateway.test/v1/oauth/callback"],
        profiles=["mcp:pre"],
    )
    added = await add_server(stack, "pre", client_id=client.client_id, client_secret=client.client_secret)
    assert added.status_code == 201, added.text
    found = added.json()
    assert found["registration"] == "preregistered" and "pre-secret" not in added.text
    user = new_user()
    assert (await connect_server(stack, found["provider"], user))["status"] == "connected"
    reply = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply), reply

    listed = await stack.client.get("/v1/mcp-servers", headers=bearer(KEY_A))
    assert [server["provider"] for server in listed.json()["mcp_servers"]] == [found["provider"]]
    assert (await stack.client.get("/v1/mcp-servers", headers=bearer(KEY_B))).json()["mcp_servers"] == []
    one = await stack.client.get(f"/v1/mcp-servers/{found['provider']}", headers=bearer(KEY_A))
    assert one.status_code == 200 and one.json()["issuer"] == found["issuer"]
    providers = (await stack.client.get("/v1/providers", headers=bearer(KEY_A))).json()["providers"]
    assert any(p["id"] == found["provider"] and p["auth"] == "mcp_oauth" for p in providers)
    deleted = await stack.client.delete(f"/v1/mcp-servers/{found['provider']}", headers=bearer(KEY_A))
    assert deleted.status_code == 204
    assert (
        await stack.client.get(f"/v1/mcp-servers/{found['provider']}", headers=bearer(KEY_A))
    ).status_code == 404
    gone = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert not isinstance(gone, vault.ResolveReply)


async def test_authorize_url_carries_resource_and_pkce(stack):
    serve_client_metadata_from_gateway(stack)
    found = (await add_server(stack, "shape")).json()
    started = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={
            "user_id": new_user(),
            "provider": found["provider"],
            "return_to": "http://127.0.0.1:3000/done",
        },
    )
    params = query(started.json()["authorize_url"])
    assert params["resource"] == server_url(stack, "shape")
    assert params["client_id"] == found["client_id"] and params["scope"] == "tools:read"


async def test_admin_page_adds_an_mcp_server_by_url(stack):
    serve_client_metadata_from_gateway(stack)
    signed = await stack.client.post("/admin/sign-in", data={"api_key": KEY_A})
    assert signed.status_code == 303
    providers = await stack.client.get("/admin/providers")
    assert 'id="add-mcp-server"' in providers.text
    form = await stack.client.get("/admin/mcp-servers")
    marker = 'name="csrf_token" value="'
    start = form.text.index(marker) + len(marker)
    token = form.text[start : form.text.index('"', start)]
    stack.sandbox.mcp.set_switches("ui-bad", no_s256=True)
    refused = await stack.client.post(
        "/admin/mcp-servers", data={"url": server_url(stack, "ui-bad"), "csrf_token": token}
    )
    assert refused.status_code == 422 and "S256" in refused.text
    added = await stack.client.post(
        "/admin/mcp-servers",
        data={"url": server_url(stack, "ui"), "name": "From the UI", "csrf_token": token},
    )
    assert added.status_code == 303 and "done=mcp_added" in added.headers["location"]
    listed = await stack.client.get("/admin/mcp-servers")
    assert "From the UI" in listed.text and server_url(stack, "ui") in listed.text


async def test_a_thin_catalogue_entry_is_discovered_when_first_connected(stack):
    serve_client_metadata_from_gateway(stack)
    providers = (await stack.client.get("/v1/providers", headers=bearer(KEY_A))).json()["providers"]
    entry = next(p for p in providers if p["id"] == "sandbox_mcp")
    assert entry["auth"] == "mcp_oauth" and entry["scopes"] == []
    refused_app = await stack.client.put(
        "/v1/provider-apps/sandbox_mcp", headers=bearer(KEY_A), json={"client_id": "x"}
    )
    assert refused_app.status_code == 422
    user = new_user()
    started = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={"user_id": user, "provider": "sandbox_mcp", "return_to": "http://127.0.0.1:3000/done"},
    )
    assert started.status_code == 200, started.text
    discovered = started.json()["provider"]
    assert discovered != "sandbox_mcp" and query(started.json()["authorize_url"])["resource"] == server_url(
        stack, "catalogue"
    )
    outcome = await connect_server(stack, "sandbox_mcp", user)
    assert outcome["status"] == "connected", outcome
    reply = await resolve(stack, discovered, user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply) and reply.mcp_server_url == server_url(stack, "catalogue")
    # Discovered and registered once: later connections reuse the tenant's definition.
    listed = (await stack.client.get("/v1/mcp-servers", headers=bearer(KEY_A))).json()["mcp_servers"]
    assert [server["provider"] for server in listed] == [discovered]


async def test_stale_discovery_is_redone_keeping_the_registration_of_the_same_issuer(stack):
    stack.sandbox.mcp.set_switches("stale", cimd=False)
    stack.sandbox.mcp.allow_plain_http = True
    found = (await add_server(stack, "stale")).json()
    assert found["registration"] == "dynamic"
    async with stack.vault.transaction() as session:
        await session.execute(
            text(
                "UPDATE vault.tenant_providers SET definition = jsonb_set(definition, '{mcp,discovered_at}',"
                " '\"2020-01-01T00:00:00+00:00\"') WHERE provider = :p"
            ),
            {"p": found["provider"]},
        )
    user = new_user()
    assert (await connect_server(stack, found["provider"], user))["status"] == "connected"
    with stack.sandbox.lock:
        registrations = [
            r for r in stack.sandbox.requests if r.endpoint == "register" and r.profile == "mcp:stale"
        ]
        probes = [r for r in stack.sandbox.requests if r.endpoint == "mcp" and r.profile == "mcp:stale"]
    assert len(registrations) == 1 and len(probes) == 2  # discovered again, registered once
    again = await stack.client.get(f"/v1/mcp-servers/{found['provider']}", headers=bearer(KEY_A))
    assert again.json()["registration"] == "dynamic"
    rows = await stack.vault_rows(
        "SELECT definition->'mcp'->>'discovered_at' FROM vault.tenant_providers WHERE provider = :p",
        p=found["provider"],
    )
    assert rows[0][0] > "2021"
