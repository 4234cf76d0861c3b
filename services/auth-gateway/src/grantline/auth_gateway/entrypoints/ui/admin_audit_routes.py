"""`/admin/audit`: the tenant's audit log, filtered; every record links to its connection and run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.admin_pages import SIGN_IN, admin_context
from grantline.auth_gateway.entrypoints.ui.browser_sessions import admin_session, gateway_of
from grantline.auth_gateway.entrypoints.ui.languages import _, lazy_gettext
from grantline.auth_gateway.entrypoints.ui.page_inputs import (
    ACTION,
    CONNECTION_ID,
    CURSOR,
    OPAQUE_ID,
    PROVIDER_ID,
    BadInput,
    optional,
)
from grantline.auth_gateway.entrypoints.ui.problem_text import page_error
from grantline.auth_gateway.entrypoints.ui.rendering import redirect, render
from grantline.auth_gateway.service.audit_query import AuditFilters, query_audit
from grantline.auth_gateway.service.problems import Problem

router = APIRouter(include_in_schema=False)

# filter name in the page URL -> (pattern, label)
FILTERS = {
    "user": (OPAQUE_ID, lazy_gettext("User")),
    "connection": (CONNECTION_ID, lazy_gettext("Connection")),
    "provider": (PROVIDER_ID, lazy_gettext("Provider")),
    "run": (OPAQUE_ID, lazy_gettext("Run")),
    "action": (ACTION, lazy_gettext("Action")),
}


def detail_text(detail: dict[str, Any]) -> str:
    """A record's detail as short `key: value` pairs (records never hold a secret)."""
    parts = []
    for key, value in sorted(detail.items()):
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}: {text[:120]}")
    return "; ".join(parts)


@router.get("/admin/audit")
async def audit_page(request: Request) -> Response:
    """Newest records first, 50 a page."""
    signed = await admin_session(request)
    if signed is None:
        return redirect(SIGN_IN)
    caller, admin = signed
    query = request.query_params
    filters = {name: (query.get(name) or "").strip() for name in FILTERS}
    context: dict[str, Any] = {
        "filters": filters,
        "records": [],
        "next_url": None,
        "detail_text": detail_text,
    }
    status = 200
    try:
        checked = {name: optional(filters[name], *FILTERS[name]) for name in FILTERS}
        cursor = optional(query.get("cursor"), CURSOR, _("Page"))
        filters_given = AuditFilters(
            user_id=checked["user"],
            connection_id=checked["connection"],
            provider=checked["provider"],
            run_id=checked["run"],
            action=checked["action"],
        )
        reply = await query_audit(gateway_of(request), caller, filters_given, cursor=cursor, limit=50)
        context["records"] = reply.records
        if reply.next_cursor:
            context["next_url"] = str(request.url.include_query_params(cursor=reply.next_cursor))
    except BadInput as bad:
        context["error_message"], status = str(bad), 422
    except Problem as problem:
        context["error_message"], status = page_error(problem), problem.status
    return render(
        "admin/audit.html",
        admin_context(request, admin, title=_("Audit log"), section="audit", **context),
        status=status,
    )
