"""Attach the browser pages to the gateway's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from grantline.auth_gateway.entrypoints.ui import (
    admin_audit_routes,
    admin_auth_routes,
    admin_connections_routes,
    admin_mcp_routes,
    admin_providers_routes,
    admin_webhooks_routes,
    connect_consent_routes,
    connect_key_routes,
    connect_routes,
    connect_scopes_routes,
    language_routes,
)
from grantline.auth_gateway.entrypoints.ui.browser_sessions import Ui
from grantline.auth_gateway.entrypoints.ui.languages import PageLanguageMiddleware
from grantline.auth_gateway.entrypoints.ui.rendering import STATIC_DIR
from grantline.auth_gateway.entrypoints.ui.ui_settings import UiSettings

STATIC_PATH = "/ui/static"


def own_return_to(public_url: str) -> tuple[str, ...]:
    """The pages a flow started from the UI may return to (added to every tenant's allow-list)."""
    base = public_url.rstrip("/")
    return (base + admin_connections_routes.RETURN_PATH, base + connect_consent_routes.DONE_PATH)


def mount_ui(app: FastAPI, settings: UiSettings | None = None, *, environment: str = "production") -> None:
    """Add `/admin`, `/connect` and the static files to `app` (outside the OpenAPI document)."""
    app.state.ui = Ui.create(settings, environment=environment)
    app.add_middleware(PageLanguageMiddleware)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="ui-static")
    for module in (
        admin_auth_routes,
        admin_connections_routes,
        admin_providers_routes,
        admin_mcp_routes,
        admin_audit_routes,
        admin_webhooks_routes,
        connect_routes,
        connect_consent_routes,
        connect_scopes_routes,
        connect_key_routes,
        language_routes,
    ):
        app.include_router(module.router)
