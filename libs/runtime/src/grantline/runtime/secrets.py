"""Secret handling: a type that never prints, and redaction for text that might hold secrets.

Secrets are held in ``pydantic.SecretStr``. Redaction is the second line of defence: log records,
span attributes and error messages pass through ``redact`` so that a token that slipped into a
message by mistake is masked before it leaves the process.
"""

import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

__all__ = ["REDACTED", "SecretStr", "is_secret_key", "redact", "redact_mapping"]

REDACTED = "[redacted]"

# Field names whose values are secrets wherever they appear.
_SECRET_KEYS = re.compile(
    r"(access_token|refresh_token|id_token|client_secret|api_key|apikey|password|secret|"
    r"authorization|code_verifier|token|cookie|signature)",
    re.IGNORECASE,
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key=value and "key": "value" forms (query strings, form bodies, JSON).
    (
        re.compile(
            r"""(?P<key>["']?(?:access_token|refresh_token|id_token|client_secret|api_key|code_verifier|"""
            r"""password|code|token)["']?\s*[:=]\s*["']?)(?P<value>[^"'&\s,}]+)""",
            re.IGNORECASE,
        ),
        r"\g<key>" + REDACTED,
    ),
    # Authorization headers.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + REDACTED),
    # Well-known token shapes: Slack, GitHub, Google, OpenAI-like keys, JWTs, the sandbox's tokens.
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{16,}"), REDACTED),
    (re.compile(r"\bya29\.[A-Za-z0-9._-]{8,}"), REDACTED),
    (re.compile(r"\b1//[A-Za-z0-9._-]{16,}"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\bsbx_[a-z]{2,8}_[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\bglk_[A-Za-z0-9_-]{16,}"), REDACTED),
)


def redact(text: str) -> str:
    """Mask anything in ``text`` that looks like a secret."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_key(key: str) -> bool:
    """True when a field of this name holds a secret."""
    return bool(_SECRET_KEYS.search(key))


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with secret-named fields masked and string values redacted."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, SecretStr) or (is_secret_key(key) and value is not None):
            clean[key] = REDACTED
        elif isinstance(value, str):
            clean[key] = redact(value)
        elif isinstance(value, Mapping):
            clean[key] = redact_mapping(value)
        else:
            clean[key] = value
    return clean
