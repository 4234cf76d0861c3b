"""`/connect/authorize/{provider}` and `/connect/done`: connecting a provider from the connect page.

The consent summary says in words what will be asked for; its POST starts the OAuth flow as the
session's user (bound to this browser by the flow cookie) and sends the browser to the provider.
Every flow, of the connect page or just in time, returns to `/connect/done`, which tells the user
how it went and hands the outcome to a waiting widget.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.flow_cookie import binding_of, browser_value, set_flow_cookie
from grantline.auth_gateway.entrypoints.ui.browser_sessions import connect_session, csrf_ok, gateway_of
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.connect_pages import (
    CONNECT_PATH,
    connect_context,
    connection_param,
    expired_page,
)
from grantline.auth_gateway.entrypoints.ui.connect_widget import widget_outcome
from grantline.auth_gateway.entrypoints.ui.languages import _
from grantline.auth_gateway.entrypoints.ui.page_inputs import (
    PROVIDER_ID,
    STALE_FORM,
    connection_settings,
    outcome_param,
)
from grantline.auth_gateway.entrypoints.ui.problem_text import PageProblem, page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.entrypoints.ui.session_cookies import ConnectBrowserSession
from grantline.auth_gateway.service import rate_limits
from grantline.auth_gateway.service.connect_sessions import scopes_to_request
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.views import InitiateIn

router = APIRouter(include_in_schema=False)

DONE_PATH = "/connect/done"


@router.get("/connect/authorize/{provider}")
async def consent_summary(request: Request, provider: str) -> Response:
    """What will be asked for, in words, before the browser goes to the provider."""
    signed = connect_session(request)
    if signed is None:
        return expired_page(request)
    caller, browser = signed
    connection_id = connection_param(request.query_params.get("connection_id"))
    return await _consent_page(request, caller, browser, provider, connection_id)


async def _consent_page(
    request: Request,
    caller: Principal,
    browser: ConnectBrowserSession,
    provider: str,
    connection_id: str | None,
    error: str | None = None,
) -> Response:
    context = connect_context(
        request, browser, _("Connect"), provider=None, scopes=[], connection_id=connection_id
    )
    status = 422 if error else 200
    try:
        if not PROVIDER_ID.fullmatch(provider):
            raise PageProblem(404, "not_found", _("this provider is not available"))
        catalogue, scopes = await scopes_to_request(gateway_of(request), caller, provider, connection_id)
        pages = CataloguePages(catalogue)
        definition = pages.providers[provider]
        context.update(
            title=_("Connect %(provider)s", provider=definition.name),
            provider=definition,
            scopes=pages.scope_lines(provider, scopes),
        )
    except Problem as problem:
        error, status = page_error(problem), problem.status
    context["error_message"] = error
    return render("connect/consent.html", context, status=status)


@router.post("/connect/authorize/{provider}")
async def authorize(request: Request, provider: str) -> Response:
    """Start the flow (returning to the "connected" page) and go to the provider."""
    signed = connect_session(request)
    if signed is None:
        return expired_page(request)
    caller, browser = signed
    form = await request.form()
    connection_id = connection_param(form.get("connection_id"))
    if not csrf_ok(request, form, browser.nonce):
        return await _consent_page(request, caller, browser, provider, connection_id, error=STALE_FORM)
    gw = gateway_of(request)
    try:
        if not PROVIDER_ID.fullmatch(provider):
            raise PageProblem(404, "not_found", _("this provider is not available"))
        catalogue, scopes = await scopes_to_request(gw, caller, provider, connection_id)
        added = [str(value) for value in form.getlist("scope")][:100]
        if added and connection_id:
            # "Add scopes": the flow asks for granted + these, which the catalogue must offer.
            offered = {s.id for p in catalogue.providers if p.id == provider for s in p.scopes}
            if not set(added) <= offered:
                raise PageProblem(422, "invalid_request", _("choose scopes this provider offers"))
            scopes = added
        body = InitiateIn(
            provider=provider,
            scopes=scopes,
            return_to=gw.settings.public_url.rstrip("/") + DONE_PATH,
            connection_id=connection_id,
            name=str(form.get("name") or "").strip() or None,
            settings=connection_settings(form),
        )
        await rate_limits.admit(gw.runtime, gw.limits.initiate_per_tenant, caller.tenant_id)
        flow_value = browser_value(request, gw.settings.public_url)
        async with gw.runtime.driver_transaction() as conn:
            started = await gw.flow.initiate(
                conn, caller, body.flow_input(), browser_binding=binding_of(flow_value)
            )
    except Problem as problem:
        return await _consent_page(
            request, caller, browser, provider, connection_id, error=page_error(problem)
        )
    response = redirect(started.authorize_url)
    set_flow_cookie(request, response, flow_value, gw.settings.public_url)
    return response


@router.get("/connect/done")
async def connected(request: Request) -> Response:
    """The page a flow (connect page or just-in-time) returns to: "connected, you can close this window"."""
    query = request.query_params
    status = outcome_param(query.get("status"))
    raw = query.get("provider") or ""
    provider_id = raw if PROVIDER_ID.fullmatch(raw) else None
    signed = connect_session(request)
    # The shared catalogue is enough for a name; a tenant's own provider shows its id.
    definition = gateway_of(request).catalogue.base.find(provider_id) if provider_id else None
    name = definition.name if definition else provider_id
    error = outcome_param(query.get("error"))
    widget = None
    if signed is not None:  # a flow of the connect page: a widget may be waiting for its outcome
        outcome = {
            "status": status or "error",
            "provider": provider_id,
            "connection_id": connection_param(query.get("connection_id")),
            "error": error,
        }
        widget = await widget_outcome(request, signed[0].tenant_id, outcome)
        if isinstance(widget, Response):
            return widget
    context = connect_context(
        request,
        signed[1] if signed else None,
        _("Connected") if status == "connected" else _("Not connected"),
        connected=status == "connected",
        provider_name=name or _("the provider"),
        error=error,
        back_url=CONNECT_PATH if signed else None,
        widget=widget,
    )
    return render("connect/done.html", context)
