"""`/admin/webhooks`: the tenant's webhook endpoints and their recent deliveries, with status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.admin_pages import SIGN_IN, admin_context
from grantline.auth_gateway.entrypoints.ui.browser_sessions import admin_session, gateway_of
from grantline.auth_gateway.entrypoints.ui.languages import _
from grantline.auth_gateway.entrypoints.ui.problem_text import page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service import notifications
from grantline.auth_gateway.service.problems import Problem

router = APIRouter(include_in_schema=False)

STATUSES = ("pending", "succeeded", "failed")


@router.get("/admin/webhooks")
async def webhooks_page(request: Request) -> Response:
    """Endpoints, then the newest 100 deliveries (filtered by status when asked)."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    wanted = request.query_params.get("status") or None
    context: dict[str, Any] = {"endpoints": [], "deliveries": [], "status": wanted, "statuses": STATUSES}
    status = 200
    if wanted is not None and wanted not in STATUSES:
        context["error_message"], status = _("Status must be pending, succeeded or failed."), 422
    else:
        gw = gateway_of(request)
        try:
            context["endpoints"] = await notifications.list_endpoints(gw.bus, caller)
            context["deliveries"] = await notifications.list_deliveries(
                gw.bus, caller, endpoint_id=None, status=wanted, limit=100
            )
        except Problem as problem:
            context["error_message"], status = page_error(problem), problem.status
    return render(
        "admin/webhooks.html",
        admin_context(request, admin, title=_("Webhooks"), section="webhooks", **context),
        status=status,
    )
