"""Fingerprints that identify a token in audit records without revealing it."""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_PREFIX = "hmac-sha256:"
_MIN_HMAC_KEY_BYTES = 16


def fingerprint(hmac_key: bytes, token: str) -> str:
    """Return `hmac-sha256:<first 16 hex of HMAC-SHA256(hmac_key, token)>`.

    Keyed, so that a leaked audit log cannot be used to test guesses of a token offline.
    """
    if len(hmac_key) < _MIN_HMAC_KEY_BYTES:
        raise ValueError(f"fingerprint HMAC key must be at least {_MIN_HMAC_KEY_BYTES} bytes")
    digest = hmac.new(hmac_key, token.encode("utf-8"), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + digest[:16]
