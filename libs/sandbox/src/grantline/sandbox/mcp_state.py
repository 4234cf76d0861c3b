"""The sandbox's MCP roles: switches per MCP server, its tools, and where each of its URLs lives.

Any name under `/mcp/{server}/` is an MCP server with its own authorization server, so a test can
stand up server A and server B side by side. Each server's behaviour is steered by McpSwitches
(in-process through `SandboxState.mcp`, or `PUT /_sandbox/mcp/{server}`), one switch per variation a
real deployment shows.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import httpx

# Scopes every sandbox MCP server knows; `tools:read` is what the 401 challenge asks for.
MCP_SCOPES = ("tools:read", "tools:write")
CHALLENGE_SCOPES = ("tools:read",)
# Protocol revisions the sandbox MCP server speaks; the newest is answered when the client's is unknown.
PROTOCOL_VERSIONS = ("2025-06-18", "2025-11-25", "2026-07-28")
# A Client ID Metadata Document larger than this is refused (the spec suggests a small limit).
CIMD_MAX_BYTES = 5 * 1024


@dataclass(frozen=True)
class McpTool:
    """One tool of the sandbox MCP server and the scope a call needs."""

    name: str
    description: str
    needs: str
    input_schema: dict[str, Any]


TOOLS: dict[str, McpTool] = {
    tool.name: tool
    for tool in (
        McpTool(
            "whoami", "Who the access token belongs to", "tools:read", {"type": "object", "properties": {}}
        ),
        McpTool(
            "echo",
            "Echo the text back",
            "tools:read",
            {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        ),
        McpTool(
            "create_note",
            "Create a note (needs tools:write)",
            "tools:write",
            {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        ),
    )
}


@dataclass(frozen=True)
class McpSwitches:
    """How one sandbox MCP server and its authorization server behave (defaults: by the spec)."""

    # Client ID Metadata Documents accepted (`client_id_metadata_document_supported`).
    cimd: bool = True
    # Dynamic Client Registration offered (`registration_endpoint`).
    dcr: bool = True
    # The 401 challenge omits `resource_metadata`; metadata only at the path-inserted well-known URL.
    prm_path_only: bool = False
    # No RFC 8414 document: authorization server metadata only through OpenID discovery.
    oidc_only: bool = False
    # The metadata names an issuer other than the URL it was fetched from.
    wrong_issuer: bool = False
    # `code_challenge_methods_supported` lacks S256 (and PKCE is then not enforced).
    no_s256: bool = False
    # The authorization response carries an `iss` that is not this issuer (RFC 9207 mix-up).
    wrong_iss: bool = False
    # Raising it makes the authorization server forget every client registered (DCR) before: they are
    # then `invalid_client` at the authorize, token and revocation endpoints (a server that lost or
    # purged its registrations).
    registration_epoch: int = 0
    access_token_expires_in: int = 3600

    @classmethod
    def names(cls) -> set[str]:
        """The switch names the control API accepts."""
        return {item.name for item in fields(cls)}


async def fetch_over_http(url: str) -> httpx.Response:
    """Fetch a Client ID Metadata Document: no redirects, short timeout."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=5.0) as client:
        return await client.get(url, headers={"Accept": "application/json"})


@dataclass
class McpSandbox:
    """Switches per MCP server and how Client ID Metadata Documents are fetched."""

    switches: dict[str, McpSwitches] = field(default_factory=dict)
    # Replaceable so in-process tests can serve a document without a socket.
    fetch_client_metadata: Callable[[str], Awaitable[httpx.Response]] = fetch_over_http
    # Accept plain-http client metadata URLs and web redirect URIs on any host (a test gateway's
    # public URL is http); by default only loopback hosts may use http.
    allow_plain_http: bool = False
    # The registration epoch each dynamically registered client was registered in.
    registered_epochs: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def switches_for(self, server: str) -> McpSwitches:
        """The effective switches of a server (defaults unless changed)."""
        with self.lock:
            return self.switches.get(server, McpSwitches())

    def set_switches(self, server: str, **changes: Any) -> McpSwitches:
        """Change some switches of one server; unknown names are a ValueError."""
        unknown = sorted(set(changes) - McpSwitches.names())
        if unknown:
            raise ValueError(f"unknown MCP switch(es): {', '.join(unknown)}")
        with self.lock:
            updated = replace(self.switches_for(server), **changes)
            self.switches[server] = updated
            return updated

    def forgot(self, server: str, client_id: str) -> bool:
        """Whether the server no longer knows a client it registered dynamically (see the epoch switch)."""
        with self.lock:
            registered = self.registered_epochs.get(client_id)
            return registered is not None and registered != self.switches_for(server).registration_epoch

    def reset(self) -> None:
        """Every server back to the defaults."""
        with self.lock:
            self.switches.clear()
            self.registered_epochs.clear()


@dataclass(frozen=True)
class McpUrls:
    """The public URLs of one sandbox MCP server and its authorization server."""

    base: str
    server: str

    @property
    def resource(self) -> str:
        """The canonical server URI (RFC 8707 `resource`, the tokens' audience)."""
        return f"{self.base}/mcp/{self.server}/mcp"

    @property
    def issuer(self) -> str:
        return f"{self.base}/mcp/{self.server}/as"

    @property
    def resource_metadata(self) -> str:
        """RFC 9728: the well-known segment inserted before the resource's path."""
        return f"{self.base}/.well-known/oauth-protected-resource/mcp/{self.server}/mcp"

    @property
    def as_key(self) -> str:
        """How this authorization server names itself in recordings, grants and clients."""
        return f"mcp:{self.server}"


def mcp_urls(public_url: str | None, request_base: str, server: str) -> McpUrls:
    """The URLs of a server as the outside sees them (the configured public URL, else the request's)."""
    return McpUrls(base=(public_url or request_base).rstrip("/"), server=server)
