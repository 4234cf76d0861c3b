"""The sandbox provider: a real OAuth 2.0 authorization server with the quirks of real providers.

Clients must be registered before they can authorize (control API `POST /_sandbox/clients`, or
`SandboxState.register_client` in-process); a registered client may restrict its redirect URIs.

MCP servers live under `/mcp/{server}/` (any name; each with its own authorization server at
`/mcp/{server}/as`), steered by McpSwitches (`SandboxState.mcp` or `PUT /_sandbox/mcp/{server}`).
"""

from grantline.sandbox.app import create_sandbox_app, serve
from grantline.sandbox.faults import Fault
from grantline.sandbox.mcp_state import MCP_SCOPES, TOOLS, McpSandbox, McpSwitches, McpUrls, mcp_urls
from grantline.sandbox.profiles import PROFILES, Profile
from grantline.sandbox.state import SandboxState

__all__ = [
    "MCP_SCOPES",
    "PROFILES",
    "TOOLS",
    "Fault",
    "McpSandbox",
    "McpSwitches",
    "McpUrls",
    "Profile",
    "SandboxState",
    "create_sandbox_app",
    "mcp_urls",
    "serve",
]
