"""`/admin/connections`: every connection of the tenant, filtered; start, re-authorize and revoke."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import SecretStr, ValidationError
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.flow_cookie import binding_of, browser_value, set_flow_cookie
from grantline.auth_gateway.entrypoints.ui.admin_pages import SIGN_IN, admin_context
from grantline.auth_gateway.entrypoints.ui.browser_sessions import admin_session, csrf_ok, gateway_of
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.languages import _, lazy_gettext
from grantline.auth_gateway.entrypoints.ui.page_inputs import (
    APP_NAME,
    CONNECTION_ID,
    CURSOR,
    OPAQUE_ID,
    PROVIDER_ID,
    STALE_FORM,
    STATUSES,
    BadInput,
    connection_settings,
    optional,
    outcome_param,
)
from grantline.auth_gateway.entrypoints.ui.problem_text import page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service.connections import (
    list_connections,
    remove_connection,
    revoke_connection,
    store_api_key_connection,
    visible_connection,
)
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.provider_apps import list_provider_apps
from grantline.auth_gateway.service.tenant_providers import catalogue_view
from grantline.auth_gateway.service.views import InitiateIn

router = APIRouter(include_in_schema=False)

RETURN_PATH = "/admin/return"
# The form's inputs for an API-key provider's fields: `key_<field id>`.
KEY_FIELD = "key_"
_OUTCOME_MESSAGES = {
    "connected": lazy_gettext("Connected %(provider)s."),
    "revoked": lazy_gettext("Revoked the %(provider)s connection."),
    "removed": lazy_gettext("Removed the %(provider)s connection."),
}


def _outcome_message(request: Request, pages: CataloguePages) -> tuple[str | None, str | None]:
    query = request.query_params
    done, error = outcome_param(query.get("done")), outcome_param(query.get("error"))
    raw = query.get("subject") or ""
    provider = pages.name(raw) if PROVIDER_ID.fullmatch(raw) else _("the provider")
    if error:
        return None, _(
            "The %(provider)s authorization did not complete (%(error)s).",
            provider=provider,
            error=error.replace("_", " "),
        )
    if done in _OUTCOME_MESSAGES:
        return str(_OUTCOME_MESSAGES[done]) % {"provider": provider}, None
    return None, None


def _message(error: BadInput | Problem) -> str:
    return page_error(error) if isinstance(error, Problem) else str(error)


def _status(error: BadInput | Problem) -> int:
    return error.status if isinstance(error, Problem) else 422


@router.get("/admin/connections")
async def connections_page(request: Request) -> Response:
    """The filterable list, with each connection's scopes described."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    gw = gateway_of(request)
    query = request.query_params
    filters = {k: (query.get(k) or "").strip() for k in ("user", "provider", "status")}
    workspace = query.get("owner") == "workspace"
    context: dict[str, Any] = {"filters": filters, "workspace": workspace, "statuses": STATUSES}
    try:
        user = optional(filters["user"], OPAQUE_ID, _("User"))
        provider = optional(filters["provider"], PROVIDER_ID, _("Provider"))
        status = optional(filters["status"], CONNECTION_ID, _("Status"))
        cursor = optional(query.get("cursor"), CURSOR, _("Page"))
        if status is not None and status not in STATUSES:
            raise BadInput(_("Status is not valid"))
        if user and workspace:
            raise BadInput(_("Filter by a user or by workspace connections, not both"))
        pages = CataloguePages(await catalogue_view(gw, caller))
        page = await list_connections(
            gw,
            caller,
            user_id=user,
            workspace=workspace,
            provider=provider,
            status=status,  # type: ignore[arg-type]  # checked against STATUSES above
            cursor=cursor,
            limit=50,
        )
    except (BadInput, Problem) as error:
        context.update(connections=[], pages=None, providers=[], error_message=_message(error))
        page_context = admin_context(request, admin, title=_("Connections"), section="connections", **context)
        return render("admin/connections.html", page_context, status=_status(error))
    status_message, error_message = _outcome_message(request, pages)
    context.update(
        connections=page.connections,
        pages=pages,
        providers=sorted(pages.providers.values(), key=lambda p: p.name.lower()),
        next_url=str(request.url.include_query_params(cursor=page.next_cursor)) if page.next_cursor else None,
        status_message=status_message,
        error_message=error_message,
    )
    return render(
        "admin/connections.html",
        admin_context(request, admin, title=_("Connections"), section="connections", **context),
    )


@router.get("/admin/connections/new")
async def new_connection_form(request: Request) -> Response:
    """Pick a provider, then the owner and the scopes (described) to ask for."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    return await _new_connection_page(request, caller, admin, values=dict(request.query_params))


async def _new_connection_page(
    request: Request, caller: Any, admin: Any, *, values: dict[str, Any], error: str | None = None
) -> Response:
    gw = gateway_of(request)
    context: dict[str, Any] = {"values": values, "error_message": error, "provider": None, "scopes": []}
    try:
        pages = CataloguePages(await catalogue_view(gw, caller))
        provider_id = optional(values.get("provider"), PROVIDER_ID, _("Provider"))
        context["choices"] = pages.connectable() + pages.key_providers()
        chosen = pages.providers.get(provider_id or "")
        if provider_id and chosen is None:
            raise BadInput(_("That provider is not in the catalogue"))
        if chosen is not None:
            listed = (await list_provider_apps(gw, caller)).provider_apps
            apps = {a.provider: a for a in listed if a.name is None}  # the default app's scopes
            app = apps.get(chosen.id)
            defaults = list(app.scopes) if app and app.scopes else pages.default_scopes(chosen.id)
            # A second shop's or site's own OAuth client, offered for a new connection.
            named = sorted(a.name for a in listed if a.provider == chosen.id and a.name and a.enabled)
            context.update(provider=chosen, defaults=defaults, granted=[], named_apps=named)
            connection_id = optional(values.get("connection_id"), CONNECTION_ID, _("Connection"))
            if connection_id:
                # "Add scopes" / re-authorize: what it has is kept; only new scopes are offered.
                existing = await visible_connection(gw, caller, connection_id)
                context.update(granted=list(existing.scopes), defaults=[])
    except (BadInput, Problem) as failure:
        context.setdefault("choices", [])
        context["error_message"] = _message(failure)
    page_context = admin_context(
        request, admin, title=_("Start a connection"), section="connections", **context
    )
    return render("admin/connection_new.html", page_context, status=422 if context["error_message"] else 200)


@router.post("/admin/connections/new")
async def start_connection(request: Request) -> Response:
    """Initiate the flow as the API does, then send the browser to the provider."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    form = await request.form()
    # A key typed into the form never goes back into a page.
    values = {
        k: v
        for k, v in form.items()
        if isinstance(v, str) and k != "csrf_token" and not k.startswith(KEY_FIELD)
    }
    if not csrf_ok(request, form, admin.nonce):
        return await _new_connection_page(request, caller, admin, values=values, error=STALE_FORM)
    gw = gateway_of(request)
    workspace = form.get("owner") == "workspace"
    if any(key.startswith(KEY_FIELD) for key in form):
        return await _store_key(request, caller, admin, form, values, workspace=workspace)
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        body = InitiateIn(
            user_id=None if workspace else (str(form.get("user_id") or "").strip() or None),
            workspace=workspace,
            provider=str(form.get("provider") or ""),
            scopes=scopes or None,
            return_to=gw.settings.public_url.rstrip("/") + RETURN_PATH,
            connection_id=optional(str(form.get("connection_id") or ""), CONNECTION_ID, _("Connection")),
            name=str(form.get("name") or "").strip() or None,
            settings=connection_settings(values),
            provider_app=optional(str(form.get("provider_app") or ""), APP_NAME, _("OAuth client")),
        )
        flow_value = browser_value(request, gw.settings.public_url)
        async with gw.runtime.driver_transaction() as conn:
            started = await gw.flow.initiate(
                conn, caller, body.flow_input(), browser_binding=binding_of(flow_value)
            )
    except ValidationError:
        message = _("Give a user id (or choose the workspace) and a provider.")
        return await _new_connection_page(request, caller, admin, values=values, error=message)
    except (BadInput, Problem) as failure:
        return await _new_connection_page(request, caller, admin, values=values, error=_message(failure))
    response = redirect(started.authorize_url)
    set_flow_cookie(request, response, flow_value, gw.settings.public_url)
    return response


async def _store_key(
    request: Request, caller: Any, admin: Any, form: Any, values: dict[str, Any], *, workspace: bool
) -> Response:
    """An API-key connection: the fields go to the vault as `POST /v1/connections/api-key` sends them."""
    gw = gateway_of(request)
    fields = {
        key.removeprefix(KEY_FIELD): SecretStr(value)
        for key, value in form.items()
        if key.startswith(KEY_FIELD) and isinstance(value, str)
    }
    try:
        provider = optional(str(form.get("provider") or ""), PROVIDER_ID, _("Provider")) or ""
        user_id = None if workspace else (str(form.get("user_id") or "").strip() or None)
        if not workspace and user_id is None:
            raise BadInput(_("Give a user id (or choose the workspace)."))
        info = await store_api_key_connection(
            gw,
            caller,
            provider=provider,
            fields=fields,
            user_id=user_id,
            workspace=workspace,
            shared=workspace and form.get("shared") == "on",
        )
    except (BadInput, Problem) as failure:
        return await _new_connection_page(request, caller, admin, values=values, error=_message(failure))
    return redirect("/admin/connections?" + urlencode({"done": "connected", "subject": info.provider}))


@router.get("/admin/return")
async def flow_returned(request: Request) -> Response:
    """Where an admin-started flow ends; needs no session, as the provider's redirect brings no cookie."""
    query = request.query_params
    status = outcome_param(query.get("status"))
    error = outcome_param(query.get("error"))
    raw_provider = query.get("provider") or ""
    provider = raw_provider if PROVIDER_ID.fullmatch(raw_provider) else None
    params = {"done": "connected"} if status == "connected" else {"error": error or "unknown"}
    if provider:
        params["subject"] = provider
    context = {
        "title": _("Connected") if status == "connected" else _("Not connected"),
        "status": status,
        "provider": provider,
        "error": error,
        "continue_url": "/admin/connections?" + urlencode(params),
    }
    return render("admin/return.html", context)


@router.get("/admin/connections/{connection_id}/revoke")
async def revoke_confirmation(request: Request, connection_id: str) -> Response:
    """The confirmation step: what will be revoked and what that does."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    return await _revoke_page(request, caller, admin, connection_id)


async def _revoke_page(
    request: Request, caller: Any, admin: Any, connection_id: str, error: str | None = None
) -> Response:
    gw = gateway_of(request)
    context: dict[str, Any] = {"connection": None, "pages": None, "error_message": error}
    try:
        if not CONNECTION_ID.fullmatch(connection_id):
            raise BadInput(_("That connection id is not valid"))
        context["connection"] = await visible_connection(gw, caller, connection_id)
        context["pages"] = CataloguePages(await catalogue_view(gw, caller))
    except (BadInput, Problem) as failure:
        context["error_message"] = _message(failure)
    page_context = admin_context(
        request, admin, title=_("Revoke a connection"), section="connections", **context
    )
    return render("admin/revoke_confirm.html", page_context, status=200 if context["connection"] else 404)


@router.post("/admin/connections/{connection_id}/revoke")
async def revoke(request: Request, connection_id: str) -> Response:
    """Revoke through the vault (reason `admin`), then back to the list."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    form = await request.form()
    if not csrf_ok(request, form, admin.nonce):
        return await _revoke_page(request, caller, admin, connection_id, error=STALE_FORM)
    gw = gateway_of(request)
    try:
        if not CONNECTION_ID.fullmatch(connection_id):
            raise BadInput(_("That connection id is not valid"))
        info = await revoke_connection(gw, caller, connection_id, reason="admin")
    except (BadInput, Problem) as failure:
        return await _revoke_page(request, caller, admin, connection_id, error=_message(failure))
    return redirect("/admin/connections?" + urlencode({"done": "revoked", "subject": info.provider}))


@router.post("/admin/connections/{connection_id}/remove")
async def remove(request: Request, connection_id: str) -> Response:
    """Delete a revoked connection for good, then back to the list."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    form = await request.form()
    if not csrf_ok(request, form, admin.nonce) or not CONNECTION_ID.fullmatch(connection_id):
        return redirect("/admin/connections")
    try:
        info = await remove_connection(gateway_of(request), caller, connection_id)
    except Problem as failure:
        return await _revoke_page(request, caller, admin, connection_id, error=_message(failure))
    return redirect("/admin/connections?" + urlencode({"done": "removed", "subject": info.provider}))
