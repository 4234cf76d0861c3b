"""Remote MCP servers through the proxy: the agent's MCP client speaks streamable HTTP to
`/v1/mcp/{provider}` with its run grant; the proxy forwards each JSON-RPC exchange to the server
with the user's token for it.

Each message is read before it goes (bounded) so the grant can narrow tools: a `tools/call` of a
tool the grant does not list is answered by the proxy with a JSON-RPC error, and a `tools/list`
answer leaves such tools out. Sessions (`Mcp-Session-Id`) and protocol headers pass through; a
server's event stream (GET) streams back and closes on revocation like any stream. A 401 goes
through the same refresh-and-retry as API calls; a connection found dead, or a 403
`insufficient_scope` (the server wants more scopes), comes back as a JSON-RPC error naming what the
user must do, so the agent can send them to re-authorize; the proxy reports the step-up to the vault
(`vault.report`, kind `insufficient_scope`), which marks the scopes the connection lacks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from grantline.contract.run_grants import RunGrant
from grantline.providers.definition import ProviderDefinition
from grantline.proxy.domain.mcp_messages import (
    MAX_MCP_MESSAGE_BYTES,
    McpRequest,
    filtered_tools_list,
    read_request,
)
from grantline.proxy.domain.upstream import UpstreamRefused, build_mcp_target, downstream_headers
from grantline.proxy.service.calls import Answer, CallRequest, McpError, Problem
from grantline.proxy.service.streaming import CallAudit, Streamer

if TYPE_CHECKING:
    from grantline.proxy.service.proxy_call import ProxyService

# Problems that are about the user's connection: an MCP client shows them per call.
_PER_CALL = frozenset({"reauth_required", "not_connected", "revoked", "missing_scopes", "tool_not_allowed"})
_SCOPE = re.compile(r'scope="([^"]*)"')
_LIST_BYTES = 1024 * 1024


class McpProxy:
    """Forwards JSON-RPC to the provider's MCP server with the user's token."""

    def __init__(self, proxy: ProxyService, streamer: Streamer) -> None:
        self._proxy = proxy
        self._streamer = streamer

    async def exchange(
        self, grant: RunGrant, request: CallRequest, audit: CallAudit, definition: ProviderDefinition
    ) -> Answer:
        """The server's answer to one HTTP exchange of the MCP session."""
        body = await self._message(request)
        message = read_request(body) if body else None
        try:
            return await self._forward(grant, request, audit, definition, body, message)
        except McpError:
            raise
        except Problem as problem:
            if message is not None and problem.code in _PER_CALL:
                raise McpError(message.id, problem.code, problem.message) from None
            raise

    async def _message(self, request: CallRequest) -> bytes | None:
        if request.method != "POST":
            return None
        if request.content_length is not None and request.content_length > MAX_MCP_MESSAGE_BYTES:
            raise Problem(
                413, "request_too_large", f"MCP messages take at most {MAX_MCP_MESSAGE_BYTES} bytes"
            )
        data = bytearray()
        async for chunk in request.body:
            data += chunk
            if len(data) > MAX_MCP_MESSAGE_BYTES:
                raise Problem(
                    413, "request_too_large", f"MCP messages take at most {MAX_MCP_MESSAGE_BYTES} bytes"
                )
        return bytes(data)

    async def _forward(
        self,
        grant: RunGrant,
        request: CallRequest,
        audit: CallAudit,
        definition: ProviderDefinition,
        body: bytes | None,
        message: McpRequest | None,
    ) -> Answer:
        provider = definition.id
        if message is not None:
            audit.mcp_method = message.method
            if message.tool is not None:
                audit.tool = request.tool or message.tool
                if not grant.allows_tool(provider, message.tool):
                    raise McpError(
                        message.id,
                        "tool_not_allowed",
                        f"the run grant does not allow the tool {message.tool!r}",
                    )
        proxy = self._proxy
        token = await proxy.token_for(grant, request, provider)
        audit.connection_id = token.connection_id
        if proxy.state.is_revoked((grant.tenant_id, grant.run_id), token.connection_id):
            raise Problem(403, "revoked", "the connection was revoked during this run")
        try:
            target = build_mcp_target(definition, token.settings, allow_http=proxy.allow_http)
        except UpstreamRefused as refused:
            raise Problem(
                404 if refused.code == "no_mcp_server" else 409, refused.code, refused.message
            ) from None
        response = await proxy.send(request.method, target, request.headers, token, body)
        if response.status == 401:
            response = await proxy.after_401(grant, request, provider, target, token, body, response, audit)
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status == 403 and "insufficient_scope" in challenge:
            response.release()
            found = _SCOPE.search(challenge)
            scopes = found.group(1) if found else ""
            await proxy.report_insufficient_scope(
                grant, request, provider, token.connection_id, scopes.split()
            )
            text = (
                f"{provider} needs more access (scope: {scopes}); the user must re-authorize the connection,"
                " which Grantline has marked as missing those scopes"
            )
            if message is None:
                raise Problem(403, "insufficient_scope", text)
            raise McpError(message.id, "insufficient_scope", text)
        if (
            message is not None
            and message.method == "tools/list"
            and provider in grant.tools
            and response.content_type == "application/json"
            and (response.content_length or 0) <= _LIST_BYTES
        ):
            try:
                content = await response.read()
            finally:
                response.release()
            narrowed = filtered_tools_list(content, lambda name: grant.allows_tool(provider, name)) or content
            headers = downstream_headers(response.headers.items())
            self._streamer.record(audit, response.status, len(narrowed), headers=headers, token=token)
            return Answer(response.status, headers, content=narrowed)
        return await self._streamer.answer(response, audit, token, target.api.max_response_bytes)
