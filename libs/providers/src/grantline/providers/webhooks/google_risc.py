"""Google Cross-Account Protection (RISC): security event tokens pushed to our endpoint.

The body is a JWT (RFC 8417 SET) signed by Google with RS256. The caller fetches Google's RISC
configuration (issuer, jwks_uri) and the JWKS, caches them, and passes them in; this module selects
the key by `kid`, verifies signature, `iss` and `aud` (one of the tenant's client ids), bounds `iat`,
and uses `jti` as the delivery id. SETs carry no `exp`: they describe past events, so Google's own
guidance is not to check expiry; the `iat` window plus `jti` de-duplication stand in for it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

from grantline.providers.webhooks.model import (
    VerifiedWebhook,
    WebhookKind,
    WebhookRejection,
    WebhookVerificationError,
)

# Google's discovery document has used both spellings; pass the discovered issuer to be exact.
GOOGLE_RISC_ISSUERS: tuple[str, ...] = ("https://accounts.google.com/", "https://accounts.google.com")
RISC_MAX_FUTURE_SKEW = timedelta(minutes=5)
# Google redelivers missed events for a while; the caller must remember jtis at least this long.
RISC_MAX_AGE = timedelta(hours=24)

_RISC = "https://schemas.openid.net/secevent/risc/event-type/"
_OAUTH = "https://schemas.openid.net/secevent/oauth/event-type/"
# event type URI -> (kind, tokens revoked?). Order is priority when one SET carries several events.
RISC_EVENT_KINDS: dict[str, tuple[WebhookKind, bool]] = {
    _OAUTH + "tokens-revoked": (WebhookKind.TOKENS_REVOKED, True),
    _OAUTH + "token-revoked": (WebhookKind.TOKEN_REVOKED, True),
    _RISC + "account-disabled": (WebhookKind.ACCOUNT_DISABLED, False),
    _RISC + "sessions-revoked": (WebhookKind.SESSIONS_REVOKED, False),
    _RISC + "account-credential-change-required": (WebhookKind.CREDENTIAL_CHANGE_REQUIRED, False),
    _RISC + "account-enabled": (WebhookKind.ACCOUNT_ENABLED, False),
    _RISC + "verification": (WebhookKind.VERIFICATION, False),
}
_MAX_TOKEN_LENGTH = 16_384


def verify_google_risc_webhook(
    body: bytes,
    headers: Mapping[str, str],
    *,
    jwks: Mapping[str, Any],
    client_ids: Collection[str],
    now: datetime,
    issuers: Sequence[str] = GOOGLE_RISC_ISSUERS,
    max_future_skew: timedelta = RISC_MAX_FUTURE_SKEW,
    max_age: timedelta = RISC_MAX_AGE,
) -> VerifiedWebhook:
    """Verify a Google RISC security event token and reduce it to a `VerifiedWebhook`.

    `body` is the raw request body (the compact JWT); `headers` are accepted for symmetry with the
    other schemes and not needed. Raises `WebhookVerificationError` with `malformed`,
    `unsupported_algorithm`, `unknown_key`, `bad_signature`, `bad_issuer`, `bad_audience`,
    `stale_timestamp` or `not_configured`.
    """
    del headers  # Google authenticates the token itself, not the HTTP request.
    audiences = [client_id for client_id in client_ids if client_id]
    if not audiences:
        raise WebhookVerificationError(WebhookRejection.NOT_CONFIGURED, "no Google client id")
    token = _token_text(body)

    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "not a JWT") from exc
    # Pin RS256 before touching keys: refuses `none`, HS256-with-public-key and other confusions.
    if header.get("alg") != "RS256":
        raise WebhookVerificationError(WebhookRejection.UNSUPPORTED_ALGORITHM, "only RS256 is accepted")
    public_key = _select_key(jwks, header.get("kid"))

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=public_key,
            algorithms=["RS256"],
            audience=audiences,
            issuer=list(issuers),
            options={
                "require": ["iss", "aud", "iat", "jti"],
                "verify_exp": False,
                "verify_iat": False,  # checked below against the injected `now`, not the wall clock
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise WebhookVerificationError(WebhookRejection.BAD_SIGNATURE) from exc
    except jwt.InvalidAudienceError as exc:
        raise WebhookVerificationError(WebhookRejection.BAD_AUDIENCE) from exc
    except jwt.InvalidIssuerError as exc:
        raise WebhookVerificationError(WebhookRejection.BAD_ISSUER) from exc
    except jwt.PyJWTError as exc:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "token claims are invalid") from exc

    issued_at = _issued_at(claims.get("iat"))
    if issued_at > now + max_future_skew or issued_at < now - max_age:
        raise WebhookVerificationError(WebhookRejection.STALE_TIMESTAMP, "iat outside the accepted window")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "jti is not a string")
    return _interpret(claims, jti=jti, issued_at=issued_at)


def _token_text(body: bytes) -> str:
    if len(body) > _MAX_TOKEN_LENGTH:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "token too large")
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "token is not ASCII") from exc
    if token.count(".") != 2:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "not a compact JWS")
    return token


def _select_key(jwks: Mapping[str, Any], kid: object) -> Any:
    if not isinstance(kid, str) or not kid:
        raise WebhookVerificationError(WebhookRejection.UNKNOWN_KEY, "token has no kid")
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise WebhookVerificationError(WebhookRejection.NOT_CONFIGURED, "JWKS has no keys")
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            continue
        if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256" or jwk.get("use", "sig") != "sig":
            raise WebhookVerificationError(WebhookRejection.UNKNOWN_KEY, "key is not an RS256 signing key")
        try:
            return RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            raise WebhookVerificationError(WebhookRejection.UNKNOWN_KEY, "key cannot be loaded") from exc
    # Possibly a rotated key: the caller may refetch the JWKS once and retry.
    raise WebhookVerificationError(WebhookRejection.UNKNOWN_KEY, "kid not in JWKS")


def _issued_at(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "iat is not a number")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "iat out of range") from exc


def _interpret(claims: dict[str, Any], *, jti: str, issued_at: datetime) -> VerifiedWebhook:
    events = claims.get("events")
    if not isinstance(events, dict) or not events:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "no events claim")
    known = [uri for uri in RISC_EVENT_KINDS if uri in events]
    event_type = known[0] if known else next(iter(events))
    kind, revoked = RISC_EVENT_KINDS.get(event_type, (WebhookKind.OTHER, False))
    # Any event in the token that revokes tokens wins, whatever the order Google wrote them in.
    revoked = revoked or any(RISC_EVENT_KINDS[uri][1] for uri in known)
    details = events[event_type]
    if not isinstance(details, dict):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "event details are not an object")

    reason = details.get("reason") if isinstance(details.get("reason"), str) else None
    if kind is WebhookKind.ACCOUNT_DISABLED and reason == "hijacking":
        # Someone else controls the Google account: its tokens must not keep acting for our user.
        revoked = True
    subject = _subject(details.get("subject"), kind)
    account = subject.get("sub") or subject.get("email") or None
    return VerifiedWebhook(
        provider="google",
        kind=kind,
        event_type=event_type,
        delivery_id=jti,
        account=account,
        accounts=(account,) if account else (),
        revoked_tokens=revoked,
        subject=subject,
        reason=reason,
        occurred_at=issued_at,
    )


def _subject(raw: object, kind: WebhookKind) -> dict[str, str]:
    if raw is None and kind in (WebhookKind.VERIFICATION, WebhookKind.OTHER):
        return {}
    if not isinstance(raw, dict):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "event has no subject")
    # iss-sub / id_token_claims carry iss+sub(+email); token subjects carry token_type/alg/token.
    # A `token` value is a refresh-token prefix or hash: match on it, never log it.
    return {key: value for key, value in raw.items() if isinstance(key, str) and isinstance(value, str)}
