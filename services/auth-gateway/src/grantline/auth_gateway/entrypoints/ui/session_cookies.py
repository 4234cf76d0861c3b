"""Signed, short-lived browser sessions and the CSRF tokens bound to them.

A cookie holds a small JSON payload (tenant, key id or connect-session id, expiry, a random nonce)
and an HMAC-SHA256 over it, keyed per purpose, so an admin cookie can never pass for a connect
cookie or the other way round. No credential is ever in a cookie: the API key and the
connect-session token are checked once, at sign-in, and then only their ids travel.

CSRF: every form carries a synchronizer token, HMAC(key, "csrf", nonce), bound to the session it
was rendered for; a post whose token does not match its cookie's nonce is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

# "connect-link": a connect link opened but not yet confirmed by the user; it signs nobody in.
Purpose = Literal["admin", "connect", "connect-link"]


# Browsers keep a cookie's name and value up to 4096 bytes. A connect session's scope is bounded when
# it is minted (service/connect_sessions.py, MAX_SCOPE_CHARS) so that its cookie stays under this.
MAX_COOKIE_VALUE = 4000


@dataclass(frozen=True)
class AdminSession:
    tenant_id: str
    key_id: str
    expires_at: int
    nonce: str


@dataclass(frozen=True)
class ConnectBrowserSession:
    tenant_id: str
    user_id: str
    session_id: str
    expires_at: int
    nonce: str
    # A held run's link: the only providers this browser may connect (None: every provider).
    providers: tuple[str, ...] | None = None
    # (provider, named app) pairs the session's new connections use (Principal.provider_apps).
    provider_apps: tuple[tuple[str, str], ...] = ()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Seals and opens session cookies; holds the only key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        self._secret = secret

    def _mac(self, purpose: str, body: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}.{body}".encode(), hashlib.sha256).digest()

    def _seal(self, purpose: Purpose, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_b64(self._mac(purpose, body))}"

    def _open(self, purpose: Purpose, value: str | None, now: float | None) -> dict[str, Any] | None:
        if not value or value.count(".") != 1 or len(value) > MAX_COOKIE_VALUE:
            return None
        body, mac = value.split(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac(purpose, body)):
                return None
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            return None
        if payload["exp"] <= (time.time() if now is None else now):
            return None
        return payload

    def seal_admin(self, *, tenant_id: str, key_id: str, ttl_seconds: int) -> tuple[str, AdminSession]:
        """A fresh admin session and its cookie value."""
        found = AdminSession(tenant_id, key_id, int(time.time()) + ttl_seconds, secrets.token_urlsafe(16))
        payload = {"t": found.tenant_id, "k": found.key_id, "exp": found.expires_at, "n": found.nonce}
        return self._seal("admin", payload), found

    def open_admin(self, value: str | None, *, now: float | None = None) -> AdminSession | None:
        """The admin session a cookie holds, if it is ours and unexpired."""
        payload = self._open("admin", value, now)
        if payload is None:
            return None
        try:
            return AdminSession(str(payload["t"]), str(payload["k"]), payload["exp"], str(payload["n"]))
        except KeyError:
            return None

    def seal_connect(
        self,
        *,
        tenant_id: str,
        user_id: str,
        session_id: str,
        expires_at: int,
        purpose: Literal["connect", "connect-link"] = "connect",
        providers: tuple[str, ...] | None = None,
        provider_apps: tuple[tuple[str, str], ...] = (),
    ) -> tuple[str, ConnectBrowserSession]:
        """A connect-page session (or an opened, unconfirmed link) and its cookie value."""
        found = ConnectBrowserSession(
            tenant_id, user_id, session_id, expires_at, secrets.token_urlsafe(16), providers, provider_apps
        )
        payload: dict[str, Any] = {
            "t": found.tenant_id,
            "u": found.user_id,
            "s": found.session_id,
            "exp": found.expires_at,
            "n": found.nonce,
        }
        if providers is not None:
            payload["p"] = list(providers)
        if provider_apps:
            payload["a"] = dict(provider_apps)
        return self._seal(purpose, payload), found

    def open_connect(
        self,
        value: str | None,
        *,
        now: float | None = None,
        purpose: Literal["connect", "connect-link"] = "connect",
    ) -> ConnectBrowserSession | None:
        """The connect-page session (or opened link) a cookie holds, if it is ours and unexpired."""
        payload = self._open(purpose, value, now)
        if payload is None:
            return None
        scoped = payload.get("p")
        apps = payload.get("a")
        try:
            return ConnectBrowserSession(
                str(payload["t"]),
                str(payload["u"]),
                str(payload["s"]),
                payload["exp"],
                str(payload["n"]),
                tuple(str(p) for p in scoped) if isinstance(scoped, list) else None,
                tuple((str(k), str(v)) for k, v in apps.items()) if isinstance(apps, dict) else (),
            )
        except KeyError:
            return None

    def csrf_token(self, nonce: str) -> str:
        """The form token bound to one session."""
        return _b64(self._mac("csrf", nonce))

    def csrf_valid(self, nonce: str, token: object) -> bool:
        """Whether a posted token belongs to the session with this nonce."""
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf_token(nonce))
