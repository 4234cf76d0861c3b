"""The sandbox provider as an ASGI app, and a coroutine that serves it with uvicorn."""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from grantline.sandbox.authorize_endpoint import authorize, decide
from grantline.sandbox.control import CONTROL_ROUTES
from grantline.sandbox.mcp_routes import MCP_ROUTES
from grantline.sandbox.resource_endpoints import accessible_resources, revoke, userinfo
from grantline.sandbox.rest_api import REST_API_ROUTES
from grantline.sandbox.state import SandboxState
from grantline.sandbox.token_endpoint import token


def create_sandbox_app(state: SandboxState | None = None) -> Starlette:
    """A sandbox OAuth 2.0 server, MCP servers under /mcp/{server}/; a SandboxState steers it in-process."""
    routes = [
        Route("/p/{profile}/authorize", authorize, methods=["GET"]),
        Route("/p/{profile}/authorize/decision", decide, methods=["POST"]),
        Route("/p/{profile}/token", token, methods=["POST"]),
        Route("/p/{profile}/revoke", revoke, methods=["POST"]),
        Route("/p/{profile}/userinfo", userinfo, methods=["GET", "POST"]),
        Route("/p/{profile}/accessible-resources", accessible_resources, methods=["GET"]),
        *REST_API_ROUTES,
        *MCP_ROUTES,
        *CONTROL_ROUTES,
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = state if state is not None else SandboxState()
    return app


async def serve(host: str = "127.0.0.1", port: int = 8765, state: SandboxState | None = None) -> None:
    """Serve the sandbox until cancelled (used by `grantline dev`)."""
    config = uvicorn.Config(
        create_sandbox_app(state), host=host, port=port, log_level="warning", lifespan="off"
    )
    await uvicorn.Server(config).serve()
