"""The FastAPI application: routers per area, problem details for every error."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request, Response

from grantline.auth_gateway.entrypoints.http import (
    audit_routes,
    connect_sessions_routes,
    connections_routes,
    mcp_servers_routes,
    oauth_routes,
    provider_apps_routes,
    providers_routes,
    runners_routes,
    satisfaction_routes,
    webhook_endpoints_routes,
    webhooks_routes,
)
from grantline.auth_gateway.entrypoints.http.problem_details import install_problem_handlers
from grantline.auth_gateway.service.context import Gateway

API_VERSION = "1.0.0"
# The document served at /openapi.json is the reviewed one checked in beside the code (docs/openapi.json
# links to it; tests/auth_gateway/test_gateway_openapi.py keeps it equal to what the routes produce).
# Serving the file instead of generating it lets the gateway run under -OO like every service:
# FastAPI writes the descriptions from docstrings, which -OO leaves out (cli/service_entry.py).
OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi.json"


def create_api(gateway: Gateway | None = None) -> FastAPI:
    """The `/v1` API; `gateway` is None only when building the OpenAPI document."""
    app = FastAPI(
        title="Grantline API",
        version=API_VERSION,
        description=(
            "Grantline's public API (auth gateway). Authenticate: `Authorization: Bearer <tenant API key>`"
            " unless an endpoint says otherwise. Errors are RFC 9457 problem details with a stable `code`."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_route("/openapi.json", _serve_openapi, include_in_schema=False)
    app.state.gateway = gateway
    install_problem_handlers(app)
    for module in (
        providers_routes,
        provider_apps_routes,
        connect_sessions_routes,
        connections_routes,
        oauth_routes,
        satisfaction_routes,
        audit_routes,
        webhooks_routes,
        runners_routes,
        webhook_endpoints_routes,
        mcp_servers_routes,
    ):
        app.include_router(module.router)
    return app


@cache
def _reviewed_openapi() -> bytes:
    return OPENAPI_FILE.read_bytes()


async def _serve_openapi(_: Request) -> Response:
    return Response(_reviewed_openapi(), media_type="application/json")


def openapi_document() -> dict[str, object]:
    """The OpenAPI document the routes produce (checked in as OPENAPI_FILE, linked from docs/)."""
    return create_api().openapi()


if __name__ == "__main__":  # `python -m grantline.auth_gateway.entrypoints.http.api > docs/openapi.json`
    import json

    print(json.dumps(openapi_document(), indent=2, sort_keys=True))
