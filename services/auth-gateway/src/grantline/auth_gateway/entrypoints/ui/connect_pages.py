"""What the connect pages of a connect session share: the page's address, its base context, the
"link expired" page and the check of a connection id taken from a query or a form."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui.browser_sessions import ui_of
from grantline.auth_gateway.entrypoints.ui.languages import _, lazy_gettext
from grantline.auth_gateway.entrypoints.ui.page_inputs import CONNECTION_ID
from grantline.auth_gateway.entrypoints.ui.rendering import render
from grantline.auth_gateway.entrypoints.ui.session_cookies import ConnectBrowserSession

CONNECT_PATH = "/connect"
_EXPIRED = lazy_gettext("This link has expired. Go back to the app and open the connections page again.")


def connect_context(
    request: Request, browser: ConnectBrowserSession | None, title: str, **extra: Any
) -> dict[str, Any]:
    """The template context every connect page starts from (with the CSRF token when signed in)."""
    csrf = ui_of(request).signer.csrf_token(browser.nonce) if browser else None
    return {"title": title, "area": "connect", "csrf_token": csrf, **extra}


def expired_page(request: Request) -> Response:
    """The page shown when the link or the connect-page session is missing or has run out."""
    return render(
        "connect/expired.html",
        connect_context(request, None, _("Link expired"), error_message=_EXPIRED),
        status=401,
    )


def connection_param(value: object) -> str | None:
    """A connection id from a query or a form, or None when absent or odd."""
    text = value.strip() if isinstance(value, str) else ""
    return text if CONNECTION_ID.fullmatch(text) else None
