"""Who is at the browser: the admin or end-user session behind a cookie, and CSRF checks on posts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from grantline.auth_gateway.adapters import tenant_store
from grantline.auth_gateway.entrypoints.ui.session_cookies import (
    AdminSession,
    ConnectBrowserSession,
    SessionSigner,
)
from grantline.auth_gateway.entrypoints.ui.ui_settings import UiSettings
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.runtime.settings import MissingProductionSetting

ADMIN_COOKIE = "grantline_admin"
CONNECT_COOKIE = "grantline_connect"
# A connect link opened in this browser, waiting for the user to confirm who they connect as.
CONNECT_LINK_COOKIE = "grantline_connect_link"


@dataclass
class Ui:
    """What the pages share: the signer and their settings."""

    settings: UiSettings
    signer: SessionSigner

    @classmethod
    def create(cls, settings: UiSettings | None = None, *, environment: str = "production") -> Ui:
        """Build from the environment; a random key when none is configured (never in production)."""
        settings = settings or UiSettings()
        secret = settings.ui_session_secret
        if secret is None and environment == "production":
            # A key per process would sign a browser out whenever its next request reaches another
            # replica (the Kubernetes base runs two), so production must be given a shared one.
            raise MissingUiSessionSecret(
                "GRANTLINE_UI_SESSION_SECRET must be set in production (32+ random characters shared "
                "by every gateway replica), or admin and connect-page sessions break across replicas."
            )
        key = secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
        return cls(settings, SessionSigner(key))


class MissingUiSessionSecret(MissingProductionSetting):
    """Production without a shared key for the browser-session cookies."""


def gateway_of(request: Request) -> Gateway:
    """The gateway wiring the API shares with the pages."""
    return request.app.state.gateway  # type: ignore[no-any-return]


def ui_of(request: Request) -> Ui:
    """The pages' own wiring."""
    return request.app.state.ui  # type: ignore[no-any-return]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or gateway_of(request).settings.public_url.startswith("https:")


def set_session_cookie(
    request: Request,
    response: Response,
    *,
    name: str,
    value: str,
    path: str,
    max_age: int,
    same_site: Literal["strict", "lax"],
) -> None:
    """HttpOnly always; Secure whenever the gateway is reached over https."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, httponly=True, secure=_secure(request), samesite=same_site
    )


def clear_session_cookie(request: Request, response: Response, *, name: str, path: str) -> None:
    """Forget a session in this browser."""
    response.delete_cookie(name, path=path, httponly=True, secure=_secure(request))


async def admin_session(request: Request) -> tuple[Principal, AdminSession] | None:
    """The signed-in admin, if the cookie is valid and the API key behind it is still active."""
    found = ui_of(request).signer.open_admin(request.cookies.get(ADMIN_COOKIE))
    if found is None:
        return None
    async with gateway_of(request).runtime.single_statement(wake_relay=False) as conn:
        keys = await tenant_store.list_api_keys(conn, found.tenant_id)
    # Revoking the key ends every admin session opened with it, at the next page.
    if not any(k.key_id == found.key_id and k.revoked_at is None for k in keys):
        return None
    return Principal(found.tenant_id, "api_key", None, found.key_id), found


def connect_session(request: Request) -> tuple[Principal, ConnectBrowserSession] | None:
    """The end user behind the connect-page cookie, if it is valid."""
    found = ui_of(request).signer.open_connect(request.cookies.get(CONNECT_COOKIE))
    if found is None:
        return None
    principal = Principal(
        found.tenant_id,
        "connect_session",
        found.user_id,
        found.session_id,
        found.providers,
        found.provider_apps,
    )
    return principal, found


def opened_connect_link(request: Request) -> ConnectBrowserSession | None:
    """The connect link this browser opened and has not confirmed yet, if the cookie is valid."""
    return ui_of(request).signer.open_connect(
        request.cookies.get(CONNECT_LINK_COOKIE), purpose="connect-link"
    )


def same_origin(request: Request) -> bool:
    """A post must come from our own pages: its Origin (or Referer) names this host, when sent."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        # Browsers send Origin with every POST; a missing one is a non-browser client, which the
        # CSRF token alone then guards.
        return origin is None
    parts = urlsplit(origin)
    own = {urlsplit(gateway_of(request).settings.public_url).netloc, request.headers.get("host", "")}
    return parts.netloc in own


def csrf_ok(request: Request, form: FormData, nonce: str) -> bool:
    """Origin check plus the synchronizer token bound to the session."""
    return same_origin(request) and ui_of(request).signer.csrf_valid(nonce, form.get("csrf_token"))
