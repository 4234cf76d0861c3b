"""`/connect/scopes/{id}`: "Add scopes" to one of the user's active connections.

The user ticks what the connection does not have yet; the consent summary then lists only those,
and the flow re-authorizes the same connection (the provider is asked for granted + new).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.browser_sessions import connect_session, csrf_ok, gateway_of, ui_of
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.languages import _
from grantline.auth_gateway.entrypoints.ui.page_inputs import CONNECTION_ID, STALE_FORM
from grantline.auth_gateway.entrypoints.ui.problem_text import PageProblem, page_error
from grantline.auth_gateway.entrypoints.ui.rendering import render
from grantline.auth_gateway.entrypoints.ui.session_cookies import ConnectBrowserSession
from grantline.auth_gateway.service.connections import visible_connection
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.tenant_providers import catalogue_view

router = APIRouter(include_in_schema=False)


async def _page(
    request: Request,
    caller: Principal,
    browser: ConnectBrowserSession,
    connection_id: str,
    *,
    chosen: list[str] | None = None,
    error: str | None = None,
) -> Response:
    csrf = ui_of(request).signer.csrf_token(browser.nonce)
    context: dict[str, object] = {
        "title": _("Add scopes"),
        "area": "connect",
        "csrf_token": csrf,
        "provider": None,
    }
    status = 422 if error else 200
    try:
        if not CONNECTION_ID.fullmatch(connection_id):
            raise PageProblem(404, "not_found", _("connection not found"))
        connection = await visible_connection(gateway_of(request), caller, connection_id)
        if connection.status != "active":
            raise PageProblem(409, "conflict", _("only an active connection can be given more scopes"))
        pages = CataloguePages(await catalogue_view(gateway_of(request), caller))
        provider = pages.providers.get(connection.provider)
        if provider is None:
            raise PageProblem(404, "not_found", _("this provider is not available"))
        new = [s.id for s in provider.scopes if s.id not in connection.scopes]
        if chosen is not None:
            unknown = [scope for scope in chosen if scope not in new]
            if unknown or not chosen:
                raise PageProblem(422, "invalid_request", _("choose one or more of the scopes listed"))
            # The consent summary: only what is new; the form goes on to the provider.
            context.update(
                title=_("Connect %(provider)s", provider=provider.name),
                provider=provider,
                scopes=pages.scope_lines(provider.id, chosen),
                connection_id=connection_id,
                new_scopes=chosen,
            )
            return render("connect/consent.html", context)
        context.update(
            title=_("Add scopes to %(provider)s", provider=provider.name),
            provider=provider,
            connection=connection,
            granted=pages.scope_lines(provider.id, list(connection.scopes)),
            available=pages.scope_lines(provider.id, new),
        )
    except Problem as problem:
        error, status = page_error(problem), problem.status
    context["error_message"] = error
    return render("connect/add_scopes.html", context, status=status)


@router.get("/connect/scopes/{connection_id}")
async def add_scopes_form(request: Request, connection_id: str) -> Response:
    """What the connection has, and what it could have besides (checkboxes)."""
    signed = connect_session(request)
    if signed is None:
        return render("connect/expired.html", {"title": _("Link expired"), "area": "connect"}, status=401)
    return await _page(request, *signed, connection_id)


@router.post("/connect/scopes/{connection_id}")
async def add_scopes_summary(request: Request, connection_id: str) -> Response:
    """The consent summary of only the scopes chosen."""
    signed = connect_session(request)
    if signed is None:
        return render("connect/expired.html", {"title": _("Link expired"), "area": "connect"}, status=401)
    caller, browser = signed
    form = await request.form()
    if not csrf_ok(request, form, browser.nonce):
        return await _page(request, caller, browser, connection_id, error=STALE_FORM)
    chosen = [str(value) for value in form.getlist("scope")][:100]
    return await _page(request, caller, browser, connection_id, chosen=chosen)
