"""`/admin/providers`: the catalogue by category, the tenant's provider apps, add or edit one (the
provider's default app, or a named one: its own OAuth client for some connections), remove a named one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import SecretStr, ValidationError
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.admin_pages import SIGN_IN, admin_context
from grantline.auth_gateway.entrypoints.ui.browser_sessions import admin_session, csrf_ok, gateway_of
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.languages import _, lazy_gettext
from grantline.auth_gateway.entrypoints.ui.page_inputs import APP_NAME, PROVIDER_ID, STALE_FORM, outcome_param
from grantline.auth_gateway.entrypoints.ui.problem_text import PageProblem, page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.provider_apps import (
    delete_provider_app,
    get_provider_app,
    list_provider_apps,
    put_provider_app,
)
from grantline.auth_gateway.service.tenant_providers import catalogue_view
from grantline.auth_gateway.service.views import ProviderAppIn

router = APIRouter(include_in_schema=False)


BAD_APP_NAME = lazy_gettext(
    "An app name is 1-40 lowercase letters, digits, - or _, starting with a letter or digit."
)


def _app_path(provider: str, app_name: str | None) -> str:
    return (
        f"/admin/providers/{provider}/app"
        if app_name is None
        else f"/admin/providers/{provider}/apps/{app_name}"
    )


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
        pages = CataloguePages(await catalogue_view(gw, caller, include_disabled=True))
        context["pages"] = pages
        context["categories"] = [
            (category, [pages.providers[p] for p in category.providers]) for category in pages.view.categories
        ]
        context["apps"] = (await list_provider_apps(gw, caller)).provider_apps
    except Problem as problem:
        context["error_message"] = page_error(problem)
    raw = request.query_params.get("provider") or ""
    done = outcome_param(request.query_params.get("done"))
    if done in ("saved", "removed") and PROVIDER_ID.fullmatch(raw):
        name = context["pages"].name(raw) if "pages" in context else raw
        app_name = request.query_params.get("app") or ""
        named = APP_NAME.fullmatch(app_name) is not None
        if done == "saved" and named:
            context["status_message"] = _(
                "Saved the provider app %(app)s for %(provider)s.", app=repr(app_name), provider=name
            )
        elif done == "saved":
            context["status_message"] = _("Saved the provider app for %(provider)s.", provider=name)
        elif named:
            context["status_message"] = _(
                "Disabled the provider app %(app)s for %(provider)s; its connections are revoked.",
                app=repr(app_name),
                provider=name,
            )
        else:
            context["status_message"] = _(
                "Disabled the provider app for %(provider)s; its connections are revoked.", provider=name
            )
    if done == "bad_app_name":
        context["error_message"] = str(BAD_APP_NAME)
    if outcome_param(request.query_params.get("done")) == "mcp_added" and PROVIDER_ID.fullmatch(raw):
        context["status_message"] = _(
            "Added the MCP server %(provider)s; your users can connect it now.", provider=raw
        )
    return render(
        "admin/providers.html",
        admin_context(request, admin, title=_("Providers"), section="providers", **context),
    )


async def _form_page(
    request: Request,
    caller: Principal,
    admin: Any,
    provider: str,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    app_name: str | None = None,
) -> Response:
    gw = gateway_of(request)
    context: dict[str, Any] = {
        "definition": None,
        "app": None,
        "values": values,
        "error_message": error,
        "app_name": app_name,
        "action": _app_path(provider, app_name),
    }
    status = 200
    try:
        if not PROVIDER_ID.fullmatch(provider) or (app_name is not None and not APP_NAME.fullmatch(app_name)):
            raise PageProblem(404, "not_found", _("provider not found"))
        pages = CataloguePages(await catalogue_view(gw, caller, include_disabled=True))
        definition = pages.providers.get(provider)
        if definition is None:
            raise PageProblem(404, "not_found", _("provider %(provider)s not found", provider=repr(provider)))
        if definition.auth == "api_key":
            raise PageProblem(
                422,
                "invalid_request",
                _("%(provider)s uses API keys; it has no OAuth client", provider=definition.name),
            )
        context["definition"] = definition
        try:
            context["app"] = await get_provider_app(gw, caller, provider, name=app_name)
        except Problem as problem:
            if problem.status != 404:
                raise
    except Problem as problem:
        context["error_message"] = page_error(problem)
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
            "force_workspace_connection": app.force_workspace_connection if app else False,
            "enabled": app.enabled if app else True,
        }
    context["redirect_uri"] = gw.settings.redirect_uri
    title = (
        _("Provider app: %(provider)s", provider=context["definition"].name)
        if context["definition"]
        else _("Provider app")
    )
    if app_name is not None:
        title += f" ({app_name})"
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


@router.get("/admin/providers/{provider}/apps/{app_name}")
async def named_app_form(request: Request, provider: str, app_name: str) -> Response:
    """The form for a named app (new, or filled with its stored values; never the secret)."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    return await _form_page(request, *signed, provider, app_name=app_name)


@router.get("/admin/providers/{provider}/named-app")
async def named_app_by_query(request: Request, provider: str) -> Response:
    """The providers page's "add a named app" box: on to that app's form."""
    app_name = (request.query_params.get("name") or "").strip()
    if not (PROVIDER_ID.fullmatch(provider) and APP_NAME.fullmatch(app_name)):
        return redirect("/admin/providers?done=bad_app_name")
    return redirect(_app_path(provider, app_name))


@router.post("/admin/providers/{provider}/apps/{app_name}/remove")
async def remove_named_app(request: Request, provider: str, app_name: str) -> Response:
    """Disable a named app as `DELETE /v1/provider-apps/{provider}/apps/{name}` does (its connections
    are revoked)."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    form = await request.form()
    if not csrf_ok(request, form, admin.nonce):
        return await _form_page(request, caller, admin, provider, app_name=app_name, error=STALE_FORM)
    try:
        if not (PROVIDER_ID.fullmatch(provider) and APP_NAME.fullmatch(app_name)):
            raise PageProblem(404, "not_found", _("provider app not found"))
        await delete_provider_app(gateway_of(request), caller, provider, name=app_name)
    except Problem as problem:
        return await _form_page(
            request, caller, admin, provider, app_name=app_name, error=page_error(problem)
        )
    return redirect(
        "/admin/providers?" + urlencode({"done": "removed", "provider": provider, "app": app_name})
    )


@router.post("/admin/providers/{provider}/app")
async def save_provider_app(request: Request, provider: str) -> Response:
    """Store through the vault like `PUT /v1/provider-apps/{provider}`; an empty secret keeps the old one."""
    return await _save(request, provider, None)


@router.post("/admin/providers/{provider}/apps/{app_name}")
async def save_named_app(request: Request, provider: str, app_name: str) -> Response:
    """Store a named app like `PUT /v1/provider-apps/{provider}/apps/{name}`."""
    return await _save(request, provider, app_name)


async def _save(request: Request, provider: str, app_name: str | None) -> Response:
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
        "force_workspace_connection": form.get("force_workspace_connection") == "on",
        "enabled": form.get("enabled") == "on",
    }
    if not csrf_ok(request, form, admin.nonce):
        return await _form_page(
            request, caller, admin, provider, values=values, error=STALE_FORM, app_name=app_name
        )
    secret = str(form.get("client_secret") or "")
    try:
        if not PROVIDER_ID.fullmatch(provider) or (app_name is not None and not APP_NAME.fullmatch(app_name)):
            raise PageProblem(404, "not_found", _("provider not found"))
        body = ProviderAppIn(
            client_id=values["client_id"],
            client_secret=SecretStr(secret) if secret.strip() else None,
            scopes=values["scopes"],
            settings=settings,
            allow_workspace_fallback=values["allow_workspace_fallback"],
            force_workspace_connection=values["force_workspace_connection"],
            enabled=values["enabled"],
        )
        await put_provider_app(gateway_of(request), caller, provider, body, name=app_name)
    except ValidationError as invalid:
        # Name the fields only: the submitted values (the secret among them) never go back out.
        fields = sorted({str(e["loc"][0]) for e in invalid.errors() if e.get("loc")})
        message = _("Check these fields: %(fields)s", fields=", ".join(f.replace("_", " ") for f in fields))
        return await _form_page(
            request, caller, admin, provider, values=values, error=message, app_name=app_name
        )
    except Problem as problem:
        return await _form_page(
            request, caller, admin, provider, values=values, error=page_error(problem), app_name=app_name
        )
    done = {"done": "saved", "provider": provider, **({"app": app_name} if app_name else {})}
    return redirect("/admin/providers?" + urlencode(done))
