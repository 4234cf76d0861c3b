"""The connect page's API-key form: an end user types the key(s) a provider asks for.

The fields go to the vault as `POST /v1/connections/api-key` sends them (checked against the
definition, and with the provider's check call when it has one), always for the session's own user.
A typed value never goes back into a page: an error re-renders the form empty.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import SecretStr
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.browser_sessions import connect_session, csrf_ok, gateway_of, ui_of
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.languages import _, lazy_gettext
from grantline.auth_gateway.entrypoints.ui.page_inputs import PROVIDER_ID
from grantline.auth_gateway.entrypoints.ui.problem_text import PageProblem, page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.entrypoints.ui.session_cookies import ConnectBrowserSession
from grantline.auth_gateway.service.connections import store_api_key_connection
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.tenant_providers import catalogue_view

router = APIRouter(include_in_schema=False)

KEY_FIELD = "key_"
_EXPIRED = lazy_gettext("This page has expired. Go back to the app and open the connections page again.")
_STALE = lazy_gettext("This form has expired. Please try again.")


async def _key_page(
    request: Request,
    caller: Principal,
    browser: ConnectBrowserSession,
    provider: str,
    error: str | None = None,
) -> Response:
    csrf = ui_of(request).signer.csrf_token(browser.nonce)
    context: dict[str, object] = {
        "title": _("Add a key"),
        "area": "connect",
        "csrf_token": csrf,
        "provider": None,
    }
    status = 422 if error else 200
    try:
        pages = CataloguePages(await catalogue_view(gateway_of(request), caller))
        definition = pages.providers.get(provider) if PROVIDER_ID.fullmatch(provider) else None
        if definition is None or definition not in pages.key_providers():
            raise PageProblem(404, "not_found", _("this provider is not available"))
        context.update(title=_("Add your %(provider)s key", provider=definition.name), provider=definition)
    except Problem as problem:
        error, status = page_error(problem), problem.status
    context["error_message"] = error
    return render("connect/key.html", context, status=status)


def _expired() -> Response:
    context = {"title": _("Link expired"), "area": "connect", "csrf_token": None, "error_message": _EXPIRED}
    return render("connect/expired.html", context, status=401)


@router.get("/connect/key/{provider}")
async def key_form(request: Request, provider: str) -> Response:
    """The fields the provider's definition asks for (secret ones as password inputs)."""
    signed = connect_session(request)
    if signed is None:
        return _expired()
    return await _key_page(request, *signed, provider)


@router.post("/connect/key/{provider}")
async def store_key(request: Request, provider: str) -> Response:
    """Hand the key to the vault for the session's user, then show the "connected" page."""
    signed = connect_session(request)
    if signed is None:
        return _expired()
    caller, browser = signed
    form = await request.form()
    if not csrf_ok(request, form, browser.nonce):
        return await _key_page(request, caller, browser, provider, error=_STALE)
    fields = {
        key.removeprefix(KEY_FIELD): SecretStr(value)
        for key, value in form.items()
        if key.startswith(KEY_FIELD) and isinstance(value, str)
    }
    try:
        if not PROVIDER_ID.fullmatch(provider):
            raise PageProblem(404, "not_found", _("this provider is not available"))
        await store_api_key_connection(
            gateway_of(request), caller, provider=provider, fields=fields, user_id=caller.user_id
        )
    except Problem as problem:
        return await _key_page(request, caller, browser, provider, error=page_error(problem))
    return redirect("/connect/done?" + urlencode({"status": "connected", "provider": provider}))
