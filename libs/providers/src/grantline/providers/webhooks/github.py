"""GitHub webhook signatures (X-Hub-Signature-256) and the events that revoke a user's grant.

GitHub signs the raw body with HMAC-SHA256 under the hook secret and sends `sha256=<hex>`. The
signature covers no timestamp, so freshness cannot be checked here: a captured delivery verifies
forever. The defence is X-GitHub-Delivery, a GUID that GitHub keeps on redelivery; the caller
stores the ids it has seen and refuses repeats.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from grantline.providers.webhooks.model import (
    SecretInput,
    VerifiedWebhook,
    WebhookKind,
    WebhookRejection,
    WebhookVerificationError,
    any_signature_matches,
    hmac_sha256_hex,
    lower_headers,
    require_header,
    secret_values,
)

GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITHUB_DELIVERY_HEADER = "X-GitHub-Delivery"
GITHUB_EVENT_HEADER = "X-GitHub-Event"
_MAX_DELIVERY_ID_LENGTH = 200


def github_signature(secret: SecretInput, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub would send (used by tests and local tooling)."""
    (key,) = secret_values(secret)
    return "sha256=" + hmac_sha256_hex(key, body)


def verify_github_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secrets: SecretInput | Sequence[SecretInput],
    *,
    now: datetime,
) -> VerifiedWebhook:
    """Verify a GitHub webhook delivery and reduce it to a `VerifiedWebhook`.

    Raises `WebhookVerificationError` with `missing_header`, `bad_signature` or `malformed`.
    `now` only stamps `occurred_at`: GitHub signs no timestamp, so replay protection is the
    caller's de-duplication on `delivery_id`.
    """
    keys = secret_values(secrets)
    lowered = lower_headers(headers)
    signature = require_header(lowered, GITHUB_SIGNATURE_HEADER)
    delivery_id = require_header(lowered, GITHUB_DELIVERY_HEADER)
    event = require_header(lowered, GITHUB_EVENT_HEADER)

    algorithm, sep, received_hex = signature.partition("=")
    # Only SHA-256: the legacy SHA-1 X-Hub-Signature is not accepted as a fallback.
    if not sep or algorithm != "sha256":
        raise WebhookVerificationError(WebhookRejection.BAD_SIGNATURE, "unsupported signature algorithm")
    if not any_signature_matches(keys, body, received_hex):
        raise WebhookVerificationError(WebhookRejection.BAD_SIGNATURE)

    # The delivery id is a key in the caller's store; keep it to something sane.
    if len(delivery_id) > _MAX_DELIVERY_ID_LENGTH or not delivery_id.isprintable():
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "delivery id is not a plausible id")
    payload = _parse_json_object(body)
    return _interpret(event, delivery_id, payload, now)


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError(WebhookRejection.MALFORMED, "body is not a JSON object")
    return payload


def _interpret(event: str, delivery_id: str, payload: dict[str, Any], now: datetime) -> VerifiedWebhook:
    action = payload.get("action")
    action_text = action if isinstance(action, str) else None
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    common: dict[str, Any] = {
        "provider": "github",
        "event_type": f"{event}.{action_text}" if action_text else event,
        "delivery_id": delivery_id,
        "workspace": str(installation_id) if installation_id is not None else None,
        "occurred_at": now,
    }

    if event == "ping":
        return VerifiedWebhook(kind=WebhookKind.PING, **common)
    if event == "github_app_authorization" and action_text == "revoked":
        # The user revoked our app on github.com: every user-to-server token for them is dead.
        sender = payload.get("sender")
        if not isinstance(sender, dict):
            raise WebhookVerificationError(WebhookRejection.MALFORMED, "revocation without sender")
        login = sender.get("login")
        user_id = sender.get("id")
        if not isinstance(login, str) or not login:
            raise WebhookVerificationError(WebhookRejection.MALFORMED, "revocation sender without login")
        subject = {"login": login}
        if isinstance(user_id, int | str) and not isinstance(user_id, bool):
            subject["id"] = str(user_id)
        return VerifiedWebhook(
            kind=WebhookKind.AUTHORIZATION_REVOKED,
            account=login,
            accounts=(login,),
            revoked_tokens=True,
            subject=subject,
            **common,
        )
    return VerifiedWebhook(kind=WebhookKind.OTHER, **common)
