"""Shared types and helpers for provider webhook verification (pure, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WebhookRejection(StrEnum):
    """Stable reason codes for a refused webhook; safe to log and to return."""

    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    MISSING_HEADER = "missing_header"
    MALFORMED = "malformed"
    # Google RISC only: the token names a key, issuer or audience we do not accept.
    UNKNOWN_KEY = "unknown_key"
    BAD_ISSUER = "bad_issuer"
    BAD_AUDIENCE = "bad_audience"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    # No secret, client id or key configured: nothing can verify, so nothing is accepted.
    NOT_CONFIGURED = "not_configured"
    # Never raised here: the caller owns the seen-delivery store and raises it itself.
    REPLAY = "replay"


class WebhookVerificationError(Exception):
    """A webhook that must be refused (HTTP 401) and must change nothing.

    The message names the reason only; it never contains a secret, a signature or the body.
    """

    def __init__(self, reason: WebhookRejection | str, detail: str = "") -> None:
        self.reason = WebhookRejection(reason)
        self.detail = detail
        super().__init__(f"{self.reason.value}: {detail}" if detail else self.reason.value)


class WebhookKind(StrEnum):
    """What a verified webhook means for Grantline, independent of the provider's wording."""

    URL_VERIFICATION = "url_verification"  # Slack endpoint handshake: echo the challenge
    PING = "ping"  # GitHub hook created: acknowledge only
    TOKENS_REVOKED = "tokens_revoked"  # the user's tokens for our app were revoked
    TOKEN_REVOKED = "token_revoked"  # one specific token was revoked (RISC token subject)
    APP_UNINSTALLED = "app_uninstalled"  # the app was removed from a whole workspace
    AUTHORIZATION_REVOKED = "authorization_revoked"  # GitHub: user revoked the OAuth/GitHub app
    SESSIONS_REVOKED = "sessions_revoked"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    CREDENTIAL_CHANGE_REQUIRED = "credential_change_required"
    VERIFICATION = "verification"  # RISC test event
    OTHER = "other"  # verified, but nothing Grantline acts on


class VerifiedWebhook(BaseModel):
    """A webhook whose signature checked out, reduced to what the gateway acts on.

    `delivery_id` is stable across redeliveries of the same event; the caller de-duplicates on
    (provider, delivery_id) and refuses repeats with `WebhookRejection.REPLAY`.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    kind: WebhookKind
    event_type: str  # the provider's own name: Slack event type, X-GitHub-Event(.action), RISC URI
    delivery_id: str
    account: str | None = None  # the single affected account when there is one
    accounts: tuple[str, ...] = ()  # every affected account (Slack may list several user ids)
    workspace: str | None = None  # Slack team / GitHub installation the event belongs to
    revoked_tokens: bool = False
    subject: dict[str, str] = Field(default_factory=dict)  # provider identifiers (iss/sub/email, login/id)
    reason: str | None = None  # e.g. RISC account-disabled reason
    challenge: str | None = None  # Slack url_verification challenge to echo back
    occurred_at: datetime | None = None


SecretInput = str | bytes | SecretStr
"""One shared secret; several may be passed during rotation."""


def secret_values(secrets: SecretInput | Sequence[SecretInput]) -> list[bytes]:
    """Normalise one or several secrets (rotation) to raw bytes, refusing an empty set."""
    items: Iterable[SecretInput] = [secrets] if isinstance(secrets, str | bytes | SecretStr) else secrets
    values: list[bytes] = []
    for item in items:
        raw = item.get_secret_value() if isinstance(item, SecretStr) else item
        value = raw.encode() if isinstance(raw, str) else raw
        if value:
            values.append(value)
    if not values:
        raise WebhookVerificationError(WebhookRejection.NOT_CONFIGURED, "no signing secret")
    return values


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header lookup that ignores case whether or not the caller's mapping already does."""
    return {key.lower(): value for key, value in headers.items()}


def require_header(headers: Mapping[str, str], name: str) -> str:
    """The header's value, or `missing_header` naming the header (never its value)."""
    value = headers.get(name.lower())
    if value is None or not value.strip():
        raise WebhookVerificationError(WebhookRejection.MISSING_HEADER, name)
    return value.strip()


def hmac_sha256_hex(secret: bytes, message: bytes) -> str:
    """Lower-case hex HMAC-SHA256, the form Slack and GitHub both send."""
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def any_signature_matches(secrets: Sequence[bytes], message: bytes, received_hex: str) -> bool:
    """Constant-time comparison against every accepted secret (old and new during rotation)."""
    received = received_hex.strip().lower().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        # No early exit: the time taken does not reveal which secret matched.
        matched |= hmac.compare_digest(hmac_sha256_hex(secret, message).encode(), received)
    return matched


def content_digest(*parts: bytes) -> str:
    """A stable id for a delivery that carries none of its own (same bytes, same id)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return "sha256:" + digest.hexdigest()
