"""`/connect`: the end user's own page, reached through a connect session: opening and confirming
the link, the list of connections, and making one the default, removing or disconnecting it.

`/connect?session=<token>` (or `?connect_session=`, as `connect_url` has it) checks the token,
remembers the link in a short-lived signed cookie that signs nobody in and redirects to
`/connect/confirm`, so the token does not stay in the address bar, the history or a Referer. That
page shows whom the link connects accounts for; only its POST uses the link up (once) and sets the
connect-page session. So a link someone else sent cannot silently sign a browser in as their user
(login CSRF). The cookies are SameSite=Lax, not Strict: the user arrives from the platform's site,
and a Strict cookie set on that cross-site navigation would not come back with the redirect. Posts
are guarded by the session-bound CSRF token and an Origin check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.browser_sessions import (
    CONNECT_COOKIE,
    CONNECT_LINK_COOKIE,
    clear_session_cookie,
    connect_session,
    csrf_ok,
    gateway_of,
    opened_connect_link,
    set_session_cookie,
    ui_of,
)
from grantline.auth_gateway.entrypoints.ui.catalogue_views import CataloguePages
from grantline.auth_gateway.entrypoints.ui.connect_pages import CONNECT_PATH, connect_context, expired_page
from grantline.auth_gateway.entrypoints.ui.connect_widget import remember_widget
from grantline.auth_gateway.entrypoints.ui.languages import _
from grantline.auth_gateway.entrypoints.ui.page_inputs import (
    CONNECTION_ID,
    PROVIDER_ID,
    STALE_FORM,
    outcome_param,
)
from grantline.auth_gateway.entrypoints.ui.problem_text import PageProblem, page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.entrypoints.ui.session_cookies import ConnectBrowserSession
from grantline.auth_gateway.service.connect_sessions import (
    confirm_connect_link,
    open_connect_link,
    tenant_name,
)
from grantline.auth_gateway.service.connections import (
    list_connections,
    remove_connection,
    revoke_connection,
    set_default_connection,
    visible_connection,
)
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.tenant_providers import catalogue_view
from grantline.auth_gateway.service.views import ConnectionView

router = APIRouter(include_in_schema=False)

CONFIRM_PATH = "/connect/confirm"
# How long an opened link waits for the user's confirmation.
_LINK_TTL_SECONDS = 600


def _set_connect_cookie(
    request: Request, response: Response, name: str, value: str, *, expires_at: int, now: datetime
) -> None:
    max_age = max(1, expires_at - int(now.timestamp()))
    set_session_cookie(
        request, response, name=name, value=value, path=CONNECT_PATH, max_age=max_age, same_site="lax"
    )


async def _open_link(request: Request, token: str) -> Response:
    # Opening a link signs nobody in (login CSRF): it only remembers, in a cookie that is no session,
    # which user the link is for, until the user confirms on the next page.
    now = datetime.now(UTC)
    async with gateway_of(request).runtime.single_statement(wake_relay=False) as conn:
        record = await open_connect_link(conn, token, now=now)
    if record is None:
        return redirect(CONNECT_PATH + "?expired=1")
    expires_at = min(int(record.expires_at.timestamp()), int(now.timestamp()) + _LINK_TTL_SECONDS)
    value, _expires = ui_of(request).signer.seal_connect(
        tenant_id=record.tenant_id,
        user_id=record.user_id,
        session_id=record.session_id,
        expires_at=expires_at,
        purpose="connect-link",
        providers=record.providers,
        provider_apps=record.provider_apps,
    )
    response = redirect(CONFIRM_PATH)
    _set_connect_cookie(request, response, CONNECT_LINK_COOKIE, value, expires_at=expires_at, now=now)
    remember_widget(request, response)
    return response


async def _confirm_page(request: Request, link: ConnectBrowserSession, error: str | None = None) -> Response:
    async with gateway_of(request).runtime.single_statement(wake_relay=False) as conn:
        name = await tenant_name(conn, link.tenant_id)
    context = connect_context(
        request, link, _("Confirm who you are"), user_id=link.user_id, tenant_name=name, error_message=error
    )
    return render("connect/confirm.html", context, status=422 if error else 200)


@router.get("/connect/confirm")
async def confirm_link(request: Request) -> Response:
    """Who this link connects accounts for, and a button to go on as them."""
    link = opened_connect_link(request)
    if link is None:
        return expired_page(request)
    return await _confirm_page(request, link)


@router.post("/connect/confirm")
async def use_link(request: Request) -> Response:
    """The user confirmed: the link is used up and this browser gets the connect-page session."""
    link = opened_connect_link(request)
    if link is None:
        return expired_page(request)
    form = await request.form()
    if not csrf_ok(request, form, link.nonce):
        return await _confirm_page(request, link, error=STALE_FORM)
    now = datetime.now(UTC)
    # One update: autocommit makes it the whole transaction.
    async with gateway_of(request).runtime.single_statement(wake_relay=False) as conn:
        session_expires = await confirm_connect_link(conn, link.session_id, now=now)
    if session_expires is None:
        response = expired_page(request)
        clear_session_cookie(request, response, name=CONNECT_LINK_COOKIE, path=CONNECT_PATH)
        return response
    ttl = ui_of(request).settings.connect_cookie_ttl_seconds
    expires_at = min(int(session_expires.timestamp()), int(now.timestamp()) + ttl)
    value, _expires = ui_of(request).signer.seal_connect(
        tenant_id=link.tenant_id,
        user_id=link.user_id,
        session_id=link.session_id,
        expires_at=expires_at,
        providers=link.providers,
        provider_apps=link.provider_apps,
    )
    response = redirect(CONNECT_PATH)
    clear_session_cookie(request, response, name=CONNECT_LINK_COOKIE, path=CONNECT_PATH)
    _set_connect_cookie(request, response, CONNECT_COOKIE, value, expires_at=expires_at, now=now)
    return response


@router.get("/connect")
async def connect_home(request: Request) -> Response:
    """Authorized and Available lists for the session's user."""
    token = request.query_params.get("session") or request.query_params.get("connect_session")
    if token:
        return await _open_link(request, token)
    signed = connect_session(request)
    if signed is None:
        return expired_page(request)
    caller, browser = signed
    gw = gateway_of(request)
    context = connect_context(request, browser, _("Your connections"), user_id=caller.user_id)
    try:
        pages = CataloguePages(await catalogue_view(gw, caller))
        page = await list_connections(
            gw, caller, user_id=None, workspace=False, provider=None, status=None, cursor=None, limit=200
        )
    except Problem as problem:
        context.update(
            error_message=page_error(problem), authorized=[], available=[], available_keys=[], pages=None
        )
        return render("connect/home.html", context, status=problem.status)
    authorized = [c for c in page.connections if c.status in ("active", "reauth_required")]
    # Revoked connections stay listed (with Remove) until the user removes them.
    revoked = [c for c in page.connections if c.status == "revoked"]
    # Every connection of a provider together (several accounts, shops or sites), the default first.
    groups: dict[str, list[ConnectionView]] = {}
    for c in sorted(
        authorized, key=lambda c: (not c.is_default, c.created_at or datetime.min.replace(tzinfo=UTC))
    ):
        groups.setdefault(c.provider, []).append(c)
    connectable = {p.id for p in pages.connectable()}
    context.update(
        pages=pages,
        authorized=authorized,
        groups=groups,
        revoked=revoked,
        can_add={provider for provider in groups if provider in connectable},
        available=[p for p in pages.connectable() if p.id not in groups],
        # API-key providers: the user types the key on the connect page's key form.
        available_keys=[p for p in pages.key_providers() if p.id not in groups],
    )
    query = request.query_params
    raw = query.get("provider") or ""
    name = pages.name(raw) if PROVIDER_ID.fullmatch(raw) else _("the provider")
    done = outcome_param(query.get("done"))
    if done == "revoked":
        context["status_message"] = _("Disconnected %(provider)s.", provider=name)
    elif done == "removed":
        context["status_message"] = _("Removed %(provider)s.", provider=name)
    elif done == "default":
        context["status_message"] = _("Apps now use this %(provider)s account by default.", provider=name)
    return render("connect/home.html", context)


@router.post("/connect/default/{connection_id}")
@router.post("/connect/remove/{connection_id}")
async def make_default(request: Request, connection_id: str) -> Response:
    """Make one of the user's connections the one apps use for its provider, or remove a revoked one."""
    signed = connect_session(request)
    if signed is None:
        return expired_page(request)
    caller, browser = signed
    form = await request.form()
    if not csrf_ok(request, form, browser.nonce) or not CONNECTION_ID.fullmatch(connection_id):
        return redirect(CONNECT_PATH)
    try:
        if request.url.path.startswith("/connect/remove/"):
            info = await remove_connection(gateway_of(request), caller, connection_id)
            return redirect(CONNECT_PATH + "?" + urlencode({"done": "removed", "provider": info.provider}))
        view = await set_default_connection(gateway_of(request), caller, connection_id)
    except Problem:
        return redirect(CONNECT_PATH)
    return redirect(CONNECT_PATH + "?" + urlencode({"done": "default", "provider": view.provider}))


async def _revoke_page(
    request: Request,
    caller: Principal,
    browser: ConnectBrowserSession,
    connection_id: str,
    error: str | None = None,
) -> Response:
    gw = gateway_of(request)
    context = connect_context(request, browser, _("Disconnect"), connection=None, pages=None)
    status = 422 if error else 200
    try:
        if not CONNECTION_ID.fullmatch(connection_id):
            raise PageProblem(404, "not_found", _("connection not found"))
        context["connection"] = await visible_connection(gw, caller, connection_id)
        context["pages"] = CataloguePages(await catalogue_view(gw, caller))
    except Problem as problem:
        error, status = page_error(problem), problem.status
    context["error_message"] = error
    return render("connect/revoke_confirm.html", context, status=status)


@router.get("/connect/revoke/{connection_id}")
async def revoke_confirmation(request: Request, connection_id: str) -> Response:
    """Ask before disconnecting."""
    signed = connect_session(request)
    if signed is None:
        return expired_page(request)
    return await _revoke_page(request, *signed, connection_id)


@router.post("/connect/revoke/{connection_id}")
async def revoke(request: Request, connection_id: str) -> Response:
    """Revoke as the user (reason `user`)."""
    signed = connect_session(request)
    if signed is None:
        return expired_page(request)
    caller, browser = signed
    form = await request.form()
    if not csrf_ok(request, form, browser.nonce):
        return await _revoke_page(request, caller, browser, connection_id, error=STALE_FORM)
    gw = gateway_of(request)
    try:
        if not CONNECTION_ID.fullmatch(connection_id):
            raise PageProblem(404, "not_found", _("connection not found"))
        info = await revoke_connection(gw, caller, connection_id, reason=None)
    except Problem as problem:
        return await _revoke_page(request, caller, browser, connection_id, error=page_error(problem))
    return redirect(CONNECT_PATH + "?" + urlencode({"done": "revoked", "provider": info.provider}))
