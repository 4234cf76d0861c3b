"""The flow cookie: binds an OAuth flow started from a page to the browser that started it.

Without it, whoever starts a flow can hand its authorize URL to someone else, whose browser then
finishes it: the victim's provider account lands on the attacker's user (login CSRF). The page that
starts a flow sets a random value in this cookie and stores its SHA-256 with the pending
authorization; the callback finishes the flow only when the browser brings the same value.

Over https the name carries the `__Host-` prefix (Secure, Path=/, no Domain), so a sibling domain or
a network attacker cannot plant its own value. SameSite=Lax, so the provider's top-level redirect to
the callback brings it. One value per browser serves every flow it has running (several tabs).
"""

from __future__ import annotations

import hashlib
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

from grantline.auth_gateway.domain.oauth_state import STATE_TTL

SECURE_NAME = "__Host-grantline_flow"
# Browsers refuse `__Host-` cookies without Secure, which plain-http development cannot set.
PLAIN_NAME = "grantline_flow"
_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


def _secure(request: Request, public_url: str) -> bool:
    return request.url.scheme == "https" or public_url.startswith("https:")


def _name(request: Request, public_url: str) -> str:
    return SECURE_NAME if _secure(request, public_url) else PLAIN_NAME


def _binding(value: str) -> str:
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def browser_value(request: Request, public_url: str) -> str:
    """This browser's flow-cookie value: the one it holds, or a fresh one."""
    held = request.cookies.get(_name(request, public_url))
    return held if held and _VALUE.fullmatch(held) else secrets.token_urlsafe(32)


def binding_of(value: str) -> str:
    """What the pending authorization keeps of a flow-cookie value (its SHA-256, hex)."""
    return _binding(value)


def set_flow_cookie(request: Request, response: Response, value: str, public_url: str) -> None:
    """(Re)set the flow cookie for as long as a flow may take."""
    secure = _secure(request, public_url)
    response.set_cookie(
        _name(request, public_url),
        value,
        max_age=int(STATE_TTL.total_seconds()),
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def presented_binding(request: Request, public_url: str) -> str | None:
    """The binding of the flow cookie this request brought, or None when it brought none."""
    held = request.cookies.get(_name(request, public_url))
    return _binding(held) if held and _VALUE.fullmatch(held) else None
