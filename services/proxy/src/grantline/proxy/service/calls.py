"""What the HTTP entrypoint hands the proxy use case and what it gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

# The vault's error codes as HTTP statuses of the proxy's own problems.
VAULT_STATUS = {
    "forbidden": 403,
    "missing_scopes": 403,
    "not_connected": 409,
    "revoked": 409,
    "reauth_required": 409,
    "conflict": 409,
    "not_found": 404,
    "invalid_request": 400,
    "provider_unavailable": 503,
    "internal": 502,
}


class Problem(Exception):
    """A call the proxy refuses or cannot make: an RFC 9457 problem with a Grantline code.

    The message is safe to show the tool (it never holds a token). ``upstream`` marks a failure of
    the provider (unreachable, redirected away) rather than a refusal by Grantline.
    """

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class McpError(Problem):
    """A JSON-RPC request the proxy answers itself with a JSON-RPC error (HTTP 200), so that an MCP
    client shows it for that one call: a tool the grant does not allow, a connection that needs the
    user again (re-authorization or more scopes)."""

    def __init__(self, jsonrpc_id: object, code: str, message: str) -> None:
        super().__init__(200, code, message)
        self.jsonrpc_id = jsonrpc_id


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One tool call as it reached the proxy."""

    grant: str
    provider: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]
    content_length: int | None
    tool: str | None = None
    host: str | None = None
    # "api": a provider REST call; "mcp": JSON-RPC to the provider's remote MCP server.
    kind: str = "api"
    # `Grantline-Connection`: one of the user's connections of the provider (several accounts), else
    # the default one; the vault looks it up only among the grant's user's (and shared) connections.
    connection_id: str | None = None


@dataclass(slots=True)
class Answer:
    """The provider's answer on its way back: status, headers, and the body (streamed or whole)."""

    status: int
    headers: list[tuple[str, str]]
    stream: AsyncIterator[bytes] | None = None
    content: bytes | None = None
