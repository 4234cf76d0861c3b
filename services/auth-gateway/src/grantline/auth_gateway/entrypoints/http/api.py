"""The FastAPI application: routers per area, problem details for every error."""

from __future__ import annotations

from fastapi import FastAPI

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
    )
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


def openapi_document() -> dict[str, object]:
    """The OpenAPI document of the API (checked in as `docs/openapi.json`)."""
    return create_api().openapi()


if __name__ == "__main__":  # `python -m grantline.auth_gateway.entrypoints.http.api > docs/openapi.json`
    import json

    print(json.dumps(openapi_document(), indent=2, sort_keys=True))
