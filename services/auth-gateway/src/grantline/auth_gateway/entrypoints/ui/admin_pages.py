"""What every admin page shares: the signed-in check and the page context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from grantline.auth_gateway.entrypoints.ui.browser_sessions import ui_of
from grantline.auth_gateway.entrypoints.ui.session_cookies import AdminSession

SIGN_IN = "/admin/sign-in"


def admin_context(
    request: Request, admin: AdminSession, *, title: str, section: str, **extra: Any
) -> dict[str, Any]:
    """Base context: the CSRF token for this session, the navigation state, the page's own values."""
    return {
        "title": title,
        "section": section,
        "signed_in": True,
        "csrf_token": ui_of(request).signer.csrf_token(admin.nonce),
        **extra,
    }
