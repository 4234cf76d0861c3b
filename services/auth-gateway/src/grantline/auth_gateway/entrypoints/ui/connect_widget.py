"""The connect widget's side of the connect pages: remember its page, then hand it the outcome.

``/connect?connect_session=...&opener_origin=...`` (popup) or ``&return_to=...`` (redirect) is
remembered in a cookie for the rest of the flow (path ``/connect``, HttpOnly). The cookie is not
trusted: the page it names is checked against the tenant's allow-list when the outcome is given.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from grantline.auth_gateway.domain.return_to import with_outcome
from grantline.auth_gateway.entrypoints.ui.browser_sessions import (
    clear_session_cookie,
    gateway_of,
    set_session_cookie,
)
from grantline.auth_gateway.service.connect_widget import widget_destination

WIDGET_COOKIE = "grantline_connect_widget"
_PATH = "/connect"
_MAX_LENGTH = 2048
_COOKIE_SECONDS = 1800


def remember_widget(request: Request, response: Response) -> None:
    """Keep the page the widget named when it opened the connect link (if it named one)."""
    query = request.query_params
    for mode, name in (("popup", "opener_origin"), ("redirect", "return_to")):
        target = query.get(name)
        if target and len(target) <= _MAX_LENGTH:
            value = f"{mode} {quote(target, safe='')}"
            set_session_cookie(
                request,
                response,
                name=WIDGET_COOKIE,
                value=value,
                path=_PATH,
                max_age=_COOKIE_SECONDS,
                same_site="lax",
            )
            return


async def widget_outcome(
    request: Request, tenant_id: str, outcome: dict[str, str | None]
) -> Response | dict[str, Any] | None:
    """For a flow the widget opened: a redirect back (redirect mode) or the template's ``widget``
    values (popup mode). None when no widget opened it or its page is not registered."""
    remembered = request.cookies.get(WIDGET_COOKIE, "")
    mode, _, quoted = remembered.partition(" ")
    if not quoted:
        return None
    async with gateway_of(request).runtime.single_statement(wake_relay=False) as conn:
        destination = await widget_destination(conn, tenant_id, mode, unquote(quoted))
    if destination is None:
        return None
    if destination.mode == "redirect":
        response = RedirectResponse(with_outcome(destination.target, **outcome), status_code=303)
        clear_session_cookie(request, response, name=WIDGET_COOKIE, path=_PATH)
        return response
    return {"origin": destination.target, **{key: value or "" for key, value in outcome.items()}}
