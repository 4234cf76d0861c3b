"""Slack request signing (v0) and the Events API payloads that revoke tokens.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with HMAC-SHA256 under the app's signing
secret and sends `v0=<hex>` in X-Slack-Signature. The timestamp is inside the signed string, so a
5-minute window bounds replays; inside the window the caller de-duplicates on `event_id`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from grantline.providers.webhooks.model import (
    SecretInput,
    VerifiedWebhook,
    WebhookKind,
    WebhookRejection,
    WebhookVerificationError,
    any_signature_matches,
    content_digest,
    hmac_sha256_hex,
    lower_headers,
    require_header,
    secret_values,
)

SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_SIGNATURE_VERSION = "v0"
SLACK_MAX_SKEW = timedelta(minutes=5)


def slack_signature(secret: SecretInput, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature value Slack would send (used by tests and local tooling)."""
    (key,) = secret_values(secret)
    return f"{SLACK_SIGNATURE_VERSION}=" + hmac_sha256_hex(key, _base_string(timestamp, body))


def verify_slack_webhook(
    body: bytes,
    headers: Mapping[str, str],
    signing_secrets: SecretInput | Sequence[SecretInput],
    *,
    now: datetime,
    max_skew: timedelta = SLACK_MAX_SKEW,
) -> VerifiedWebhook:
    """Verify a Slack Events API request and reduce it to a `VerifiedWebhook`.

    Raises `WebhookVerificationError` with `missing_header`, `malformed`, `stale_timestamp` or
    `bad_signature`; the signature is checked before the body is parsed.
    """
    secrets = secret_values(signing_secrets)
    lowered = lower_headers(headers)
    timestamp = require_header(lowered, SLACK_TIMESTAMP_HEADER)
    signature = require_header(lowered, SLACK_SIGNATURE_HEADER)

    if not timestamp.isascii() or not timestamp.isdigit():
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "timestamp is not an integer")
    sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC) if len(timestamp) <= 12 else None
    # Both directions: a timestamp far in the future is as suspicious as an old one.
    if sent_at is None or abs(now - sent_at) > max_skew:
        raise WebhookVerificationError(WebhookRejection.STALE_TIMESTAMP, "outside the 5-minute window")

    version, sep, received_hex = signature.partition("=")
    if not sep or version != SLACK_SIGNATURE_VERSION:
        raise WebhookVerificationError(WebhookRejection.BAD_SIGNATURE, "unsupported signature version")
    if not any_signature_matches(secrets, _base_string(timestamp, body), received_hex):
        raise WebhookVerificationError(WebhookRejection.BAD_SIGNATURE)

    payload = _parse_json_object(body)
    return _interpret(payload, timestamp=timestamp, body=body, sent_at=sent_at)


def _base_string(timestamp: str, body: bytes) -> bytes:
    return f"{SLACK_SIGNATURE_VERSION}:{timestamp}:".encode() + body


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "body is not a JSON object")
    return payload


def _interpret(payload: dict[str, Any], *, timestamp: str, body: bytes, sent_at: datetime) -> VerifiedWebhook:
    envelope_type = payload.get("type")
    if envelope_type == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise WebhookVerificationError(WebhookRejection.MALFORMED, "url_verification without challenge")
        return VerifiedWebhook(
            provider="slack",
            kind=WebhookKind.URL_VERIFICATION,
            event_type="url_verification",
            # No event id in a handshake: the signed bytes identify it, so a replay has the same id.
            delivery_id=content_digest(timestamp.encode(), body),
            challenge=challenge,
            occurred_at=sent_at,
        )
    if envelope_type != "event_callback":
        return VerifiedWebhook(
            provider="slack",
            kind=WebhookKind.OTHER,
            event_type=str(envelope_type or "unknown"),
            delivery_id=content_digest(timestamp.encode(), body),
            occurred_at=sent_at,
        )

    event_id = payload.get("event_id")
    event = payload.get("event")
    if not isinstance(event_id, str) or not event_id or not isinstance(event, dict):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "event_callback without event_id or event")
    team_id = payload.get("team_id")
    workspace = team_id if isinstance(team_id, str) and team_id else None
    event_type = str(event.get("type") or "unknown")
    event_time = payload.get("event_time")
    occurred_at = datetime.fromtimestamp(event_time, tz=UTC) if type(event_time) is int else sent_at
    common: dict[str, Any] = {
        "provider": "slack",
        "event_type": event_type,
        # Slack keeps event_id across its retries (X-Slack-Retry-Num), which is what de-duplication needs.
        "delivery_id": event_id,
        "workspace": workspace,
        "occurred_at": occurred_at,
    }

    if event_type == "tokens_revoked":
        tokens = event.get("tokens")
        if not isinstance(tokens, dict):
            raise WebhookVerificationError(WebhookRejection.MALFORMED, "tokens_revoked without tokens")
        # The lists hold user ids, never token strings; oauth = user tokens, bot = bot-user tokens.
        oauth = _string_list(tokens.get("oauth"))
        bot = _string_list(tokens.get("bot"))
        accounts = tuple(dict.fromkeys([*oauth, *bot]))
        return VerifiedWebhook(
            kind=WebhookKind.TOKENS_REVOKED,
            account=accounts[0] if len(accounts) == 1 else None,
            accounts=accounts,
            revoked_tokens=True,
            subject={"team_id": workspace or "", "oauth": ",".join(oauth), "bot": ",".join(bot)},
            **common,
        )
    if event_type == "app_uninstalled":
        # Every token of the workspace is gone; Slack may send tokens_revoked too, in any order.
        return VerifiedWebhook(
            kind=WebhookKind.APP_UNINSTALLED,
            revoked_tokens=True,
            subject={"team_id": workspace or ""},
            **common,
        )
    return VerifiedWebhook(kind=WebhookKind.OTHER, **common)


def _string_list(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "token owner list is not a list of ids")
    return [item for item in value if item]
