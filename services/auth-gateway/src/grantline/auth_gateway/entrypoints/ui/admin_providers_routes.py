"""`/admin/providers`: the catalogue by category, the tenant's provider apps, add or edit one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import SecretStr, ValidationError
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.admin_pages import SIGN_IN, admin_context
from grantline.auth_gateway.entrypoints.ui.browser_sessions import admin_session, csrf_ok, gateway_of
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.page_inputs import PROVIDER_ID, STALE_FORM, outcome_param
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.provider_apps import (
    get_provider_app,
    list_provider_apps,
    put_provider_app,
)
from grantline.auth_gateway.service.tenant_providers import catalogue_view
from grantline.auth_gateway.service.views import ProviderAppIn

router = APIRouter(include_in_schema=False)


@router.get("/admin/providers")
async def providers_page(request: Request) -> Response:
    """Categories with their providers, the tenant's provider apps and the redirect URI to register."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    gw = gateway_of(request)
    context: dict[str, Any] = {"redirect_uri": gw.settings.redirect_uri, "categories": [], "apps": []}
    try:
        pages = CataloguePages(await catalogue_view(gw, caller))
        context["pages"] = pages
        context["categories"] = [
            (category, [pages.providers[p] for p in category.providers]) for category in pages.view.categories
        ]
        context["apps"] = (await list_provider_apps(gw, caller)).provider_apps
    except Problem as problem:
        context["error_message"] = problem.detail
    raw = request.query_params.get("provider") or ""
    if outcome_param(request.query_params.get("done")) == "saved" and PROVIDER_ID.fullmatch(raw):
        name = context["pages"].name(raw) if "pages" in context else raw
        context["status_message"] = f"Saved the provider app for {name}."
    return render(
        "admin/providers.html",
        admin_context(request, admin, title="Providers", section="providers", **context),
    )


async def _form_page(
    request: Request,
    caller: Principal,
    admin: Any,
    provider: str,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    gw = gateway_of(request)
    context: dict[str, Any] = {"definition": None, "app": None, "values": values, "error_message": error}
    status = 200
    try:
        if not PROVIDER_ID.fullmatch(provider):
            raise Problem(404, "not_found", "provider not found")
        pages = CataloguePages(await catalogue_view(gw, caller))
        definition = pages.providers.get(provider)
        if definition is None:
            raise Problem(404, "not_found", f"provider {provider!r} not found")
        if definition.auth == "api_key":
            raise Problem(422, "invalid_request", f"{definition.name} uses API keys; it has no OAuth client")
        context["definition"] = definition
        try:
            context["app"] = await get_provider_app(gw, caller, provider)
        except Problem as problem:
            if problem.status != 404:
                raise
    except Problem as problem:
        context["error_message"] = problem.detail
        status = problem.status
    if error is not None:
        status = 422
    if context["values"] is None:
        app = context["app"]
        context["values"] = {
            "client_id": app.client_id if app else "",
            "scopes": list(app.scopes) if app else [],
            "settings": dict(app.settings) if app else {},
            "allow_workspace_fallback": app.allow_workspace_fallback if app else False,
            "enabled": app.enabled if app else True,
        }
    context["redirect_uri"] = gw.settings.redirect_uri
    title = f"Provider app: {context['definition'].name}" if context["definition"] else "Provider app"
    return render(
        "admin/provider_app_form.html",
        admin_context(request, admin, title=title, section="providers", **context),
        status=status,
    )


@router.get("/admin/providers/{provider}/app")
async def provider_app_form(request: Request, provider: str) -> Response:
    """The form, filled with the stored values (never the secret)."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    return await _form_page(request, *signed, provider)


@router.post("/admin/providers/{provider}/app")
async def save_provider_app(request: Request, provider: str) -> Response:
    """Store through the vault like `PUT /v1/provider-apps/{provider}`; an empty secret keeps the old one."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    form = await request.form()
    settings = {
        key.removeprefix("setting_"): value.strip()
        for key, value in form.items()
        if key.startswith("setting_") and isinstance(value, str) and value.strip()
    }
    values = {
        "client_id": str(form.get("client_id") or "").strip(),
        "scopes": [s for s in form.getlist("scopes") if isinstance(s, str)],
        "settings": settings,
        "allow_workspace_fallback": form.get("allow_workspace_fallback") == "on",
        "enabled": form.get("enabled") == "on",
    }
    if not csrf_ok(request, form, admin.nonce):
        return await _form_page(request, caller, admin, provider, values=values, error=STALE_FORM)
    secret = str(form.get("client_secret") or "")
    try:
        if not PROVIDER_ID.fullmatch(provider):
            raise Problem(404, "not_found", "provider not found")
        body = ProviderAppIn(
            client_id=values["client_id"],
            client_secret=SecretStr(secret) if secret.strip() else None,
            scopes=values["scopes"],
            settings=settings,
            allow_workspace_fallback=values["allow_workspace_fallback"],
            enabled=values["enabled"],
        )
        await put_provider_app(gateway_of(request), caller, provider, body)
    except ValidationError as invalid:
        # Name the fields only: the submitted values (the secret among them) never go back out.
        fields = sorted({str(e["loc"][0]) for e in invalid.errors() if e.get("loc")})
        message = "Check these fields: " + ", ".join(f.replace("_", " ") for f in fields)
        return await _form_page(request, caller, admin, provider, values=values, error=message)
    except Problem as problem:
        return await _form_page(request, caller, admin, provider, values=values, error=problem.detail)
    return redirect("/admin/providers?" + urlencode({"done": "saved", "provider": provider}))
