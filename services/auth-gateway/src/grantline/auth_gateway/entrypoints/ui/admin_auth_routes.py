"""`/admin/sign-in` and `/admin/sign-out`: a tenant API key in, a short-lived signed session out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.client_address import client_address
from grantline.auth_gateway.entrypoints.ui.browser_sessions import (
    ADMIN_COOKIE,
    admin_session,
    clear_session_cookie,
    csrf_ok,
    gateway_of,
    same_origin,
    set_session_cookie,
    ui_of,
)
from grantline.auth_gateway.entrypoints.ui.languages import _
from grantline.auth_gateway.entrypoints.ui.page_inputs import STALE_FORM
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service import rate_limits
from grantline.auth_gateway.service.problems import Problem

router = APIRouter(include_in_schema=False)

ADMIN_PATH = "/admin"


@router.get("/admin")
async def admin_home(request: Request) -> Response:
    """The connections page when signed in, else the sign-in form."""
    signed = await admin_session(request)
    return redirect("/admin/connections" if signed else "/admin/sign-in")


@router.get("/admin/sign-in")
async def sign_in_form(request: Request) -> Response:
    """The sign-in form."""
    signed_out = request.query_params.get("signed_out") == "1"
    return render(
        "admin/sign_in.html",
        {"title": _("Sign in"), "status_message": _("You are signed out.") if signed_out else None},
    )


@router.post("/admin/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the key once; the session cookie then carries only the key's id."""
    form = await request.form()
    key = form.get("api_key")
    error = None
    if not same_origin(request):
        error = _("This form must be sent from the sign-in page.")
    elif not isinstance(key, str) or not key.strip():
        error = _("Enter the tenant API key.")
    status = 401
    if error is None:
        gw = gateway_of(request)
        try:
            caller = await rate_limits.authenticate(
                gw.runtime, gw.limits, client_address(request), str(key).strip()
            )
            if caller.kind != "api_key":
                raise Problem(403, "forbidden", "a connect-session token cannot sign in")
        except Problem as problem:
            error = _("That API key is not valid, or it has been revoked.")
            if problem.status == 429:
                status, error = 429, _("Too many failed sign-ins from here; try again in a minute.")
    if error is not None:
        # Never echo the submitted key back into the page.
        return render("admin/sign_in.html", {"title": _("Sign in"), "error_message": error}, status=status)
    ui = ui_of(request)
    ttl = ui.settings.admin_session_ttl_seconds
    value, _expires = ui.signer.seal_admin(
        tenant_id=caller.tenant_id, key_id=caller.credential_id, ttl_seconds=ttl
    )
    response = redirect("/admin/connections")
    set_session_cookie(
        request, response, name=ADMIN_COOKIE, value=value, path=ADMIN_PATH, max_age=ttl, same_site="strict"
    )
    return response


@router.post("/admin/sign-out")
async def sign_out(request: Request) -> Response:
    """Forget the session in this browser."""
    signed = await admin_session(request)
    form = await request.form()
    if signed is not None and not csrf_ok(request, form, signed[1].nonce):
        return render("error.html", {"title": _("Not signed out"), "error_message": STALE_FORM}, status=403)
    response = redirect("/admin/sign-in?signed_out=1")
    clear_session_cookie(request, response, name=ADMIN_COOKIE, path=ADMIN_PATH)
    return response
