"""Webhook verification for every provider scheme, in one import.

Each `verify_*_webhook` takes the raw body bytes, the request headers (any mapping; case is
ignored), the provider secret(s) or keys and an injected `now`. It returns a `VerifiedWebhook` or
raises `WebhookVerificationError(reason)`. Replay refusal is the caller's: it records
(provider, delivery_id) and raises `WebhookRejection.REPLAY` when it sees one again.
"""

from grantline.providers.webhooks.github import (
    GITHUB_DELIVERY_HEADER,
    GITHUB_EVENT_HEADER,
    GITHUB_SIGNATURE_HEADER,
    github_signature,
    verify_github_webhook,
)
from grantline.providers.webhooks.google_risc import (
    GOOGLE_RISC_ISSUERS,
    RISC_EVENT_KINDS,
    RISC_MAX_AGE,
    RISC_MAX_FUTURE_SKEW,
    verify_google_risc_webhook,
)
from grantline.providers.webhooks.model import (
    SecretInput,
    VerifiedWebhook,
    WebhookKind,
    WebhookRejection,
    WebhookVerificationError,
)
from grantline.providers.webhooks.slack import (
    SLACK_MAX_SKEW,
    SLACK_SIGNATURE_HEADER,
    SLACK_TIMESTAMP_HEADER,
    slack_signature,
    verify_slack_webhook,
)

__all__ = [
    "GITHUB_DELIVERY_HEADER",
    "GITHUB_EVENT_HEADER",
    "GITHUB_SIGNATURE_HEADER",
    "GOOGLE_RISC_ISSUERS",
    "RISC_EVENT_KINDS",
    "RISC_MAX_AGE",
    "RISC_MAX_FUTURE_SKEW",
    "SLACK_MAX_SKEW",
    "SLACK_SIGNATURE_HEADER",
    "SLACK_TIMESTAMP_HEADER",
    "SecretInput",
    "VerifiedWebhook",
    "WebhookKind",
    "WebhookRejection",
    "WebhookVerificationError",
    "github_signature",
    "slack_signature",
    "verify_github_webhook",
    "verify_google_risc_webhook",
    "verify_slack_webhook",
]
