"""The pure side of MCP discovery: challenge parsing, URL order, metadata checks, the definition kept."""

import pytest

from grantline.providers.catalogue import parse_definition
from grantline.providers.mcp_discovery import (
    McpDiscoveryError,
    authorization_server_metadata_urls,
    canonical_server_uri,
    challenge_scopes,
    check_authorization_server_metadata,
    check_resource_metadata,
    choose_registration,
    mcp_definition,
    parse_bearer_challenge,
    provider_id_for,
    resource_metadata_urls,
)

SERVER = "https://mcp.example.com/v1/mcp"
ISSUER = "https://auth.example.com/tenant1"
METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/token",
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
    "client_id_metadata_document_supported": True,
    "registration_endpoint": f"{ISSUER}/register",
}


def test_challenge_parameters():
    header = 'Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/.well-known/y"'
    assert parse_bearer_challenge(header) == {
        "error": "insufficient_scope",
        "scope": "a b",
        "resource_metadata": "https://x/.well-known/y",
    }
    assert parse_bearer_challenge('Basic realm="x"') == {}
    assert parse_bearer_challenge(None) == {}


def test_well_known_urls_in_the_specifications_order():
    assert resource_metadata_urls(SERVER, {}) == [
        "https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp",
        "https://mcp.example.com/.well-known/oauth-protected-resource",
    ]
    hinted = resource_metadata_urls(SERVER, {"resource_metadata": "https://mcp.example.com/prm"})
    assert hinted[0] == "https://mcp.example.com/prm"
    assert authorization_server_metadata_urls(ISSUER) == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
    ]
    assert authorization_server_metadata_urls("https://auth.example.com") == [
        "https://auth.example.com/.well-known/oauth-authorization-server",
        "https://auth.example.com/.well-known/openid-configuration",
    ]


def test_canonical_server_uri():
    assert canonical_server_uri("HTTPS://MCP.Example.com/v1/mcp#x") == SERVER
    with pytest.raises(McpDiscoveryError):
        canonical_server_uri("ftp://mcp.example.com/")
    with pytest.raises(McpDiscoveryError):
        canonical_server_uri("https://user:pw@mcp.example.com/")


def test_metadata_refusals_name_the_step():
    with pytest.raises(McpDiscoveryError, match="issuer mismatch") as caught:
        check_authorization_server_metadata({**METADATA, "issuer": "https://evil.example"}, ISSUER)
    assert caught.value.step == "authorization_server_metadata"
    with pytest.raises(McpDiscoveryError, match="S256"):
        check_authorization_server_metadata(
            {**METADATA, "code_challenge_methods_supported": ["plain"]}, ISSUER
        )
    with pytest.raises(McpDiscoveryError, match="different resource"):
        check_resource_metadata(
            {"resource": "https://other.example/mcp", "authorization_servers": [ISSUER]}, SERVER, "u"
        )


def test_registration_preference_and_definition():
    server = check_authorization_server_metadata(METADATA, ISSUER)
    assert choose_registration(server, preregistered=True) == "preregistered"
    assert choose_registration(server, preregistered=False) == "client_metadata_document"
    dcr_only = check_authorization_server_metadata(
        {**METADATA, "client_id_metadata_document_supported": False}, ISSUER
    )
    assert choose_registration(dcr_only, preregistered=False) == "dynamic"
    neither = check_authorization_server_metadata(
        {
            k: v
            for k, v in METADATA.items()
            if k not in ("registration_endpoint", "client_id_metadata_document_supported")
        },
        ISSUER,
    )
    with pytest.raises(McpDiscoveryError) as caught:
        choose_registration(neither, preregistered=False)
    assert caught.value.step == "registration"
    resource = check_resource_metadata(
        {"resource": SERVER, "authorization_servers": [ISSUER], "scopes_supported": ["read", "write"]},
        SERVER,
        "u",
    )
    assert challenge_scopes({}, resource) == ["read", "write"]
    assert challenge_scopes({"scope": "read"}, resource) == ["read"]
    raw = mcp_definition(
        provider_id=provider_id_for(None, SERVER),
        name="Example",
        resource=resource,
        server=server,
        registration="client_metadata_document",
        scopes=["read"],
    )
    definition = parse_definition(raw, source="test")
    assert definition.id == "mcp_mcp_example_com_v1_mcp"
    assert definition.oauth.issuer == ISSUER and definition.oauth.pkce == "required"
    assert definition.oauth.authorize_params == {"resource": SERVER} == definition.oauth.token_params
    assert definition.mcp.registration == "client_metadata_document"
