"""The routes of the sandbox's MCP roles, mounted by create_sandbox_app next to the OAuth profiles."""

from __future__ import annotations

from starlette.routing import Route

from grantline.sandbox.mcp_authorization import authorize, oauth_metadata, openid_configuration, revoke, token
from grantline.sandbox.mcp_registration import register
from grantline.sandbox.mcp_server import mcp_endpoint, protected_resource_metadata

MCP_ROUTES = [
    Route("/mcp/{server}/mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"]),
    Route(
        "/.well-known/oauth-protected-resource/mcp/{server}/mcp", protected_resource_metadata, methods=["GET"]
    ),
    Route("/.well-known/oauth-authorization-server/mcp/{server}/as", oauth_metadata, methods=["GET"]),
    Route("/.well-known/openid-configuration/mcp/{server}/as", openid_configuration, methods=["GET"]),
    Route("/mcp/{server}/as/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/mcp/{server}/as/authorize", authorize, methods=["GET"]),
    Route("/mcp/{server}/as/token", token, methods=["POST"]),
    Route("/mcp/{server}/as/register", register, methods=["POST"]),
    Route("/mcp/{server}/as/revoke", revoke, methods=["POST"]),
]
