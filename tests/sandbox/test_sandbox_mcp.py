"""The sandbox MCP servers and their authorization servers behave as the MCP authorization spec says."""

import httpx
import pytest
from sandbox_support import REDIRECT_URI, SANDBOX_URL, query_of

from grantline.providers.authorize import code_challenge_s256, new_code_verifier

RESOURCE_A = f"{SANDBOX_URL}/mcp/a/mcp"
ISSUER_A = f"{SANDBOX_URL}/mcp/a/as"
CIMD_URL = "https://grantline.test/v1/mcp/client-metadata/tenant-1.json"
CIMD = {
    "client_id": CIMD_URL,
    "client_name": "Grantline",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def rpc(method: str, params: dict | None = None, message_id: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": message_id, "method": method, "params": params or {}}


async def register(http, server="a", **extra) -> dict:
    body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", **extra}
    response = await http.post(f"/mcp/{server}/as/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def connect(http, client_id, *, server="a", scope="tools:read", **overrides):
    """Authorize and exchange; returns the token response."""
    verifier = new_code_verifier()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "st",
        "code_challenge": code_challenge_s256(verifier),
        "code_challenge_method": "S256",
        "resource": f"{SANDBOX_URL}/mcp/{server}/mcp",
    }
    redirect = query_of(await http.get(f"/mcp/{server}/as/authorize", params=params))
    assert redirect["iss"] == f"{SANDBOX_URL}/mcp/{server}/as"
    body = {
        "grant_type": "authorization_code",
        "code": redirect["code"],
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": params["resource"],
        **overrides,
    }
    reply = await http.post(f"/mcp/{server}/as/token", data={k: v for k, v in body.items() if v is not None})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def call(http, token, tool, server="a", **arguments):
    return await http.post(
        f"/mcp/{server}/mcp",
        json=rpc("tools/call", {"name": tool, "arguments": arguments}),
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_discovery_chain_from_the_401_challenge(http):
    challenge = await http.post("/mcp/a/mcp", json=rpc("initialize"))
    assert challenge.status_code == 401
    header = challenge.headers["www-authenticate"]
    prm_url = f"{SANDBOX_URL}/.well-known/oauth-protected-resource/mcp/a/mcp"
    assert f'resource_metadata="{prm_url}"' in header and 'scope="tools:read"' in header
    prm = (await http.get(prm_url)).json()
    assert prm["resource"] == RESOURCE_A and prm["authorization_servers"] == [ISSUER_A]
    metadata = (await http.get("/.well-known/oauth-authorization-server/mcp/a/as")).json()
    assert metadata["issuer"] == ISSUER_A
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["client_id_metadata_document_supported"] is True
    assert metadata["registration_endpoint"] == f"{ISSUER_A}/register"


async def test_dcr_connect_list_and_call_tools(http):
    client = await register(http, application_type="web")
    assert "client_secret" not in client
    tokens = await connect(http, client["client_id"])
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    init = await http.post(
        "/mcp/a/mcp", json=rpc("initialize", {"protocolVersion": "2025-11-25"}), headers=headers
    )
    assert init.json()["result"]["protocolVersion"] == "2025-11-25"
    note = await http.post(
        "/mcp/a/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    )
    assert note.status_code == 202
    listed = await http.post("/mcp/a/mcp", json=rpc("tools/list"), headers=headers)
    assert {tool["name"] for tool in listed.json()["result"]["tools"]} == {"whoami", "echo", "create_note"}
    echoed = await call(http, tokens["access_token"], "echo", text="hi")
    assert echoed.json()["result"]["content"][0]["text"] == "hi"


async def test_confidential_dcr_client_gets_a_secret_and_must_use_it(http):
    client = await register(http, token_endpoint_auth_method="client_secret_post")
    assert client["client_secret"].startswith("sbx_cs_")
    with pytest.raises(AssertionError):
        await connect(http, client["client_id"])
    await connect(http, client["client_id"], client_secret=client["client_secret"])


async def test_insufficient_scope_then_step_up(http):
    client = await register(http)
    narrow = await connect(http, client["client_id"])
    refused = await call(http, narrow["access_token"], "create_note", text="x")
    assert refused.status_code == 403
    header = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in header and 'scope="tools:read tools:write"' in header
    wide = await connect(http, client["client_id"], scope="tools:read tools:write")
    assert (await call(http, wide["access_token"], "create_note", text="x")).status_code == 200


async def test_cimd_client_is_fetched_and_validated(http, state):
    fetched: list[str] = []

    async def serve_document(url: str) -> httpx.Response:
        fetched.append(url)
        return httpx.Response(200, json=CIMD)

    state.mcp.fetch_client_metadata = serve_document
    tokens = await connect(http, CIMD_URL)
    assert fetched == [CIMD_URL]
    assert (await call(http, tokens["access_token"], "whoami")).status_code == 200


@pytest.mark.parametrize(
    "document",
    [
        {**CIMD, "client_id": "https://elsewhere.test/doc.json"},
        {**CIMD, "redirect_uris": ["https://evil.test/cb"]},
        {**CIMD, "token_endpoint_auth_method": "client_secret_basic"},
    ],
)
async def test_bad_client_metadata_documents_are_refused(http, state, document):
    async def serve_document(url: str) -> httpx.Response:
        return httpx.Response(200, json=document)

    state.mcp.fetch_client_metadata = serve_document
    params = {"response_type": "code", "client_id": CIMD_URL, "redirect_uri": REDIRECT_URI}
    response = await http.get("/mcp/a/as/authorize", params=params)
    assert response.status_code == 400 and "location" not in response.headers


async def test_a_token_for_server_a_is_refused_by_server_b(http):
    client = await register(http)
    tokens = await connect(http, client["client_id"])
    refused = await call(http, tokens["access_token"], "whoami", server="b")
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    # A client registered at A's authorization server is unknown at B's.
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI}
    assert (await http.get("/mcp/b/as/authorize", params=params)).status_code == 400


async def test_pkce_and_resource_are_required(http):
    client = await register(http)
    base = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI}
    no_pkce = query_of(await http.get("/mcp/a/as/authorize", params={**base, "resource": RESOURCE_A}))
    assert no_pkce["error"] == "invalid_request" and no_pkce["iss"] == ISSUER_A
    pkce = {"code_challenge": code_challenge_s256(new_code_verifier()), "code_challenge_method": "S256"}
    no_resource = query_of(await http.get("/mcp/a/as/authorize", params={**base, **pkce}))
    assert no_resource["error"] == "invalid_target"
    with pytest.raises(AssertionError):
        await connect(http, client["client_id"], resource=None)


async def test_refresh_needs_resource_and_rotates(http, state):
    client = await register(http)
    tokens = await connect(http, client["client_id"])
    body = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": client["client_id"],
    }
    refused = await http.post("/mcp/a/as/token", data=body)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    renewed = await http.post("/mcp/a/as/token", data={**body, "resource": RESOURCE_A})
    assert renewed.status_code == 200 and renewed.json()["refresh_token"] != tokens["refresh_token"]
    assert (await call(http, renewed.json()["access_token"], "whoami")).status_code == 200
    revoked = await http.post(
        "/mcp/a/as/revoke", data={"token": renewed.json()["refresh_token"], "client_id": client["client_id"]}
    )
    assert revoked.status_code == 200
    assert (await call(http, renewed.json()["access_token"], "whoami")).status_code == 401


async def test_switches_change_what_discovery_sees(http, state):
    state.mcp.set_switches("a", dcr=False, prm_path_only=True, oidc_only=True, cimd=False)
    header = (await http.post("/mcp/a/mcp", json=rpc("ping"))).headers["www-authenticate"]
    assert "resource_metadata" not in header
    assert (await http.get("/.well-known/oauth-authorization-server/mcp/a/as")).status_code == 404
    for path in ("/.well-known/openid-configuration/mcp/a/as", "/mcp/a/as/.well-known/openid-configuration"):
        metadata = (await http.get(path)).json()
        assert "registration_endpoint" not in metadata
        assert metadata["client_id_metadata_document_supported"] is False
    assert (await http.post("/mcp/a/as/register", json={"redirect_uris": [REDIRECT_URI]})).status_code == 404
    # Server b keeps the defaults.
    assert (await http.get("/.well-known/oauth-authorization-server/mcp/b/as")).status_code == 200


async def test_broken_servers_for_the_clients_refusal_tests(http, state):
    state.mcp.set_switches("a", wrong_issuer=True, no_s256=True, wrong_iss=True)
    metadata = (await http.get("/.well-known/oauth-authorization-server/mcp/a/as")).json()
    assert metadata["issuer"] != ISSUER_A and "S256" not in metadata["code_challenge_methods_supported"]
    client = await register(http)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT_URI,
        "resource": RESOURCE_A,
    }
    redirect = query_of(await http.get("/mcp/a/as/authorize", params=params))
    assert "code" in redirect and redirect["iss"] != ISSUER_A


async def test_control_api_sets_switches(http):
    changed = await http.put("/_sandbox/mcp/a", json={"dcr": False})
    assert changed.status_code == 200 and changed.json()["dcr"] is False
    assert (await http.get("/_sandbox/mcp/a")).json()["dcr"] is False
    unknown = await http.put("/_sandbox/mcp/a", json={"bogus": True})
    assert unknown.status_code == 400 and "bogus" in unknown.json()["error"]
    await http.post("/_sandbox/reset", json={})
    assert (await http.get("/_sandbox/mcp/a")).json()["dcr"] is True


async def test_dcr_refuses_bad_metadata(http):
    for body in (
        {},
        {"redirect_uris": ["http://grantline.example/cb"], "application_type": "web"},
        {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt"},
        {"redirect_uris": [REDIRECT_URI], "application_type": "desktop"},
    ):
        response = await http.post("/mcp/a/as/register", json=body)
        assert response.status_code == 400, body
