"""The OAuth `state` parameter and the pending authorization it binds (DESIGN section 5).

`state` is 256 random bits, url-safe; the server keeps only its SHA-256, so a database read does not
yield a usable state. It is single use, expires after 10 minutes and is bound to tenant, owner and
provider. PKCE S256 verifiers live with it. Pure rules only: storage and the atomic "mark used" are
the caller's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

STATE_TTL = timedelta(minutes=10)
_STATE_BYTES = 32  # 256 bits
# token_urlsafe(32) is 43 characters; anything else was not minted here.
_STATE_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 section 4.1
OWNER_PATTERN = r"^(user:.+|workspace)$"


class StateErrorCode(StrEnum):
    """Stable codes for a refused callback; safe to show and to put in `return_to`."""

    UNKNOWN_STATE = "unknown_state"
    EXPIRED_STATE = "expired_state"
    USED_STATE = "used_state"
    WRONG_TENANT = "wrong_tenant"
    WRONG_PROVIDER = "wrong_provider"
    ISSUER_MISMATCH = "issuer_mismatch"
    OTHER_BROWSER = "other_browser"


class StateError(Exception):
    """The callback cannot proceed; nothing may change (no exchange, no connection update)."""

    def __init__(self, code: StateErrorCode | str, detail: str = "") -> None:
        self.code = StateErrorCode(code)
        self.detail = detail
        super().__init__(f"{self.code.value}: {detail}" if detail else self.code.value)


class PendingAuthorization(BaseModel):
    """One started authorization flow, stored under the hash of its `state`."""

    model_config = ConfigDict(frozen=True)

    state_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant_id: str = Field(min_length=1)
    owner: str = Field(pattern=OWNER_PATTERN)  # "user:<id>" or "workspace"
    provider: str = Field(min_length=1)
    connection_id: str = Field(min_length=1)  # the re-authorized connection, or the new pending one
    scopes: tuple[str, ...] = ()
    redirect_uri: str = Field(min_length=1)
    return_to: str = Field(min_length=1)
    code_verifier: SecretStr | None = None  # None only for providers without PKCE
    created_at: AwareDatetime
    expires_at: AwareDatetime
    used_at: AwareDatetime | None = None
    # SHA-256 of the flow cookie of the browser that started the flow; None when the API started it.
    browser_binding: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


def new_state() -> tuple[str, str]:
    """A fresh `(state_plain, state_hash)`: send the plain value, store only the hash."""
    plain = secrets.token_urlsafe(_STATE_BYTES)
    return plain, hash_state(plain)


def hash_state(state: str) -> str:
    """SHA-256 (hex) of a state value: the key it is stored and looked up under."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def state_hash_for_lookup(received: str | None) -> str:
    """Hash a state received on the callback, refusing values this service never minted.

    Raises `StateError("unknown_state")` for a missing or ill-formed value, so junk never reaches
    the store.
    """
    if not received or not _STATE_PATTERN.fullmatch(received):
        raise StateError(StateErrorCode.UNKNOWN_STATE, "state is missing or not one of ours")
    return hash_state(received)


def new_pending_authorization(
    *,
    state_hash: str,
    tenant_id: str,
    owner: str,
    provider: str,
    connection_id: str,
    scopes: list[str] | tuple[str, ...],
    redirect_uri: str,
    return_to: str,
    code_verifier: SecretStr | None,
    now: datetime,
    ttl: timedelta = STATE_TTL,
    browser_binding: str | None = None,
) -> PendingAuthorization:
    """A pending authorization created at `now` that expires `ttl` (10 minutes) later."""
    _require_aware(now)
    return PendingAuthorization(
        state_hash=state_hash,
        tenant_id=tenant_id,
        owner=owner,
        provider=provider,
        connection_id=connection_id,
        scopes=tuple(scopes),
        redirect_uri=redirect_uri,
        return_to=return_to,
        code_verifier=code_verifier,
        created_at=now,
        expires_at=now + ttl,
        browser_binding=browser_binding,
    )


def check_pending(
    pending: PendingAuthorization | None,
    *,
    now: datetime,
    tenant_id_expected: str | None,
    provider_expected: str | None,
) -> None:
    """Refuse a callback whose pending authorization is absent, foreign, used or expired.

    `tenant_id_expected` / `provider_expected` are None when the request carries no tenant or
    provider of its own (the browser callback is bound by `state` alone). Raises `StateError`.
    """
    _require_aware(now)
    if pending is None:
        raise StateError(StateErrorCode.UNKNOWN_STATE)
    # Binding first: another tenant learns nothing about the state's use or age.
    if tenant_id_expected is not None and pending.tenant_id != tenant_id_expected:
        raise StateError(StateErrorCode.WRONG_TENANT)
    if provider_expected is not None and pending.provider != provider_expected:
        raise StateError(StateErrorCode.WRONG_PROVIDER)
    if pending.used_at is not None:
        raise StateError(StateErrorCode.USED_STATE)
    if now >= pending.expires_at:
        raise StateError(StateErrorCode.EXPIRED_STATE)


def check_browser(pending: PendingAuthorization, presented_binding: str | None) -> None:
    """Login CSRF defence: a flow started in a browser finishes only in that browser.

    `presented_binding` is the SHA-256 of the flow cookie the callback brought (None: no cookie).
    Flows started through the API carry no binding and are bound by `state` alone.
    """
    if pending.browser_binding is None:
        return
    if presented_binding is None or not hmac.compare_digest(presented_binding, pending.browser_binding):
        raise StateError(StateErrorCode.OTHER_BROWSER, "the flow was started in another browser")


def mark_used(pending: PendingAuthorization, *, now: datetime) -> PendingAuthorization:
    """The same pending authorization, consumed at `now` (the store must do this atomically)."""
    _require_aware(now)
    return pending.model_copy(update={"used_at": now})


def check_issuer(expected_iss: str | None, received_iss: str | None, *, iss_required: bool = False) -> None:
    """RFC 9207 mix-up defence: an `iss` sent on the callback must be the provider's issuer.

    Compared by simple string comparison (RFC 9207 section 2.4). Without a known issuer there is
    nothing to compare against. `iss_required` is for providers that advertise
    `authorization_response_iss_parameter_supported`: then a missing `iss` is refused too.
    """
    if expected_iss is None:
        return
    if received_iss is None:
        if iss_required:
            raise StateError(StateErrorCode.ISSUER_MISMATCH, "the provider must send iss")
        return
    if received_iss != expected_iss:
        raise StateError(StateErrorCode.ISSUER_MISMATCH)


def new_code_verifier() -> SecretStr:
    """A PKCE code verifier: 256 random bits, 43 url-safe characters (RFC 7636)."""
    return SecretStr(secrets.token_urlsafe(32))


def code_challenge_s256(verifier: SecretStr) -> str:
    """The S256 code challenge for a verifier: BASE64URL(SHA256(verifier)) without padding."""
    value = verifier.get_secret_value()
    if not _VERIFIER_PATTERN.fullmatch(value):
        raise ValueError("code verifier must be 43-128 unreserved characters")
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
