"""The sandbox MCP server: streamable HTTP (JSON responses), OAuth-protected as the MCP spec says.

A minimal JSON-RPC 2.0 implementation of the methods a client needs (initialize, ping, tools/list,
tools/call). The official `mcp` SDK's streamable-HTTP transport needs a session manager running in
the app's lifespan, which the sandbox (served with lifespan off, tested through ASGITransport) does
not have; what the sandbox must get exactly right is the authorization side, written out here:
401 with `WWW-Authenticate` (resource_metadata, scope), Protected Resource Metadata (RFC 9728),
tokens refused unless their audience is this server, 403 `insufficient_scope` for tools that need more.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from grantline.sandbox.common import finish, sandbox_state
from grantline.sandbox.mcp_state import (
    CHALLENGE_SCOPES,
    MCP_SCOPES,
    PROTOCOL_VERSIONS,
    TOOLS,
    McpUrls,
    mcp_urls,
)
from grantline.sandbox.state import Grant, SandboxState


def urls_of(request: Request) -> McpUrls:
    """The URLs of the MCP server named in the request path."""
    return mcp_urls(sandbox_state(request).public_url, str(request.base_url), request.path_params["server"])


def _challenge(state: SandboxState, urls: McpUrls, *, error: str | None, scopes: tuple[str, ...]) -> str:
    parts = []
    if error:
        parts.append(f'error="{error}"')
    if not state.mcp.switches_for(urls.server).prm_path_only:
        parts.append(f'resource_metadata="{urls.resource_metadata}"')
    parts.append(f'scope="{" ".join(scopes)}"')
    return "Bearer " + ", ".join(parts)


def _unauthorized(state: SandboxState, urls: McpUrls, description: str | None) -> JSONResponse:
    error = "invalid_token" if description else None
    body = {"error": error or "unauthorized", "error_description": description or "a Bearer token is needed"}
    challenge = _challenge(state, urls, error=error, scopes=CHALLENGE_SCOPES)
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})


def _insufficient_scope(state: SandboxState, urls: McpUrls, grant: Grant, needed: str) -> JSONResponse:
    # The challenge names every scope the call needs together with what the token already has.
    wanted = tuple(dict.fromkeys([*grant.scopes, needed]))
    challenge = _challenge(state, urls, error="insufficient_scope", scopes=wanted)
    body = {"error": "insufficient_scope", "error_description": f"this tool needs the {needed} scope"}
    return JSONResponse(body, status_code=403, headers={"WWW-Authenticate": challenge})


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _authenticated_grant(state: SandboxState, urls: McpUrls, request: Request) -> Grant | Response:
    presented = _bearer(request)
    if presented is None:
        return _unauthorized(state, urls, None)
    token = state.live_token(presented, "access_token")
    if token is None:
        return _unauthorized(state, urls, "the access token is invalid, expired or revoked")
    with state.lock:
        grant = state.grants[token.grant_id]
    if grant.resource != urls.resource:
        # RFC 8707 audience: a token minted for another resource is not valid here, whoever issued it.
        return _unauthorized(state, urls, "the access token was not issued for this MCP server")
    return grant


def _result(message_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def _error(message_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": message}}


def _initialize(params: dict[str, Any], urls: McpUrls) -> dict[str, Any]:
    asked = params.get("protocolVersion")
    version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1]
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": f"grantline-sandbox-mcp-{urls.server}", "version": "1.0.0"},
    }


def _tools_list() -> dict[str, Any]:
    return {
        "tools": [
            {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}
            for tool in TOOLS.values()
        ]
    }


def _call_tool(grant: Grant, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    if name == "whoami":
        text = json.dumps({"sub": grant.subject, "scopes": grant.scopes, "aud": grant.resource})
    elif name == "echo":
        text = str(arguments.get("text", ""))
    else:
        text = f"note created: {arguments.get('text', '')}"
    return {"content": [{"type": "text", "text": text}], "isError": False}


def _parse(raw: bytes) -> dict[str, Any]:
    message = json.loads(raw)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "method" not in message:
        raise ValueError("not a JSON-RPC 2.0 request")
    return message


async def mcp_endpoint(request: Request) -> Response:
    """POST one JSON-RPC message; GET (no server-initiated stream here) and DELETE answer 405."""
    state, urls = sandbox_state(request), urls_of(request)
    entry = state.record(
        profile=urls.as_key,
        endpoint="mcp",
        method=request.method,
        query=dict(request.query_params),
        headers=dict(request.headers),
        body=None,
        grant_type=None,
    )
    return finish(entry, await _answer(request, state, urls))


async def _answer(request: Request, state: SandboxState, urls: McpUrls) -> Response:
    authenticated = _authenticated_grant(state, urls, request)
    if isinstance(authenticated, Response):
        return authenticated
    if request.method != "POST":
        return Response(status_code=405, headers={"Allow": "POST"})
    try:
        message = _parse(await request.body())
    except ValueError as exc:
        return JSONResponse(_error(None, -32700, f"parse error: {exc}"), status_code=400)
    message_id, method = message.get("id"), message["method"]
    params: dict[str, Any] = message["params"] if isinstance(message.get("params"), dict) else {}
    if message_id is None:
        return Response(status_code=202)  # a notification (notifications/initialized) gets no body
    if method == "initialize":
        return JSONResponse(_result(message_id, _initialize(params, urls)))
    if method == "ping":
        return JSONResponse(_result(message_id, {}))
    if method == "tools/list":
        return JSONResponse(_result(message_id, _tools_list()))
    if method != "tools/call":
        return JSONResponse(_error(message_id, -32601, f"method {method!r} not found"))
    tool = TOOLS.get(str(params.get("name")))
    if tool is None:
        return JSONResponse(_error(message_id, -32602, f"unknown tool {params.get('name')!r}"))
    if tool.needs not in authenticated.scopes:
        return _insufficient_scope(state, urls, authenticated, tool.needs)
    arguments: dict[str, Any] = params["arguments"] if isinstance(params.get("arguments"), dict) else {}
    return JSONResponse(_result(message_id, _call_tool(authenticated, tool.name, arguments)))


async def protected_resource_metadata(request: Request) -> Response:
    """RFC 9728 metadata of one MCP server, at the path-inserted well-known URL."""
    urls = urls_of(request)
    return JSONResponse(
        {
            "resource": urls.resource,
            "authorization_servers": [urls.issuer],
            "scopes_supported": list(MCP_SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": f"Sandbox MCP server {urls.server}",
        }
    )
