"""`/admin/mcp-servers`: add a remote MCP server by URL (the form for `POST /v1/mcp-servers`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import SecretStr, ValidationError
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.admin_pages import SIGN_IN, admin_context
from grantline.auth_gateway.entrypoints.ui.browser_sessions import admin_session, csrf_ok, gateway_of
from grantline.auth_gateway.entrypoints.ui.languages import _
from grantline.auth_gateway.entrypoints.ui.page_inputs import STALE_FORM
from grantline.auth_gateway.entrypoints.ui.problem_text import page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service.mcp_servers import McpServerIn, add_mcp_server, list_mcp_servers
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem

router = APIRouter(include_in_schema=False)


async def _page(
    request: Request,
    caller: Principal,
    admin: Any,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    gw = gateway_of(request)
    context: dict[str, Any] = {"values": values or {"url": "", "name": "", "client_id": ""}, "servers": []}
    try:
        context["servers"] = (await list_mcp_servers(gw, caller)).mcp_servers
    except Problem as problem:
        error = error or page_error(problem)
    context["error_message"] = error
    context["redirect_uri"] = gw.settings.redirect_uri
    return render(
        "admin/mcp_server_form.html",
        admin_context(request, admin, title=_("Add an MCP server"), section="providers", **context),
        status=422 if values is not None and error else 200,
    )


@router.get("/admin/mcp-servers")
async def mcp_server_form(request: Request) -> Response:
    """The form, and the MCP servers the tenant already added."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    return await _page(request, *signed)


@router.post("/admin/mcp-servers")
async def add_mcp_server_from_form(request: Request) -> Response:
    """Discover and register like `POST /v1/mcp-servers`; a failure names the step, values are kept."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("url", "name", "client_id")}
    if not csrf_ok(request, form, admin.nonce):
        return await _page(request, caller, admin, values=values, error=STALE_FORM)
    secret = str(form.get("client_secret") or "").strip()
    try:
        body = McpServerIn(
            url=values["url"],
            name=values["name"] or None,
            client_id=values["client_id"] or None,
            client_secret=SecretStr(secret) if secret else None,
        )
        added = await add_mcp_server(gateway_of(request), caller, body)
    except ValidationError as invalid:
        fields = sorted({str(e["loc"][0]) for e in invalid.errors() if e.get("loc")})
        message = _("Check these fields: %(fields)s", fields=", ".join(f.replace("_", " ") for f in fields))
        return await _page(request, caller, admin, values=values, error=message)
    except Problem as problem:
        return await _page(request, caller, admin, values=values, error=page_error(problem))
    return redirect("/admin/providers?" + urlencode({"done": "mcp_added", "provider": added.provider}))
