"""Endpoint signing secrets sealed at rest: AES-256-GCM, bound to the endpoint and its tenant.

The notifier signs every delivery with the secret, so it keeps it recoverable, never in clear: a row
copied to another endpoint or tenant does not open (the associated data differs).
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from grantline.runtime.settings import MissingProductionSetting

_NONCE = 12


class MissingSealingKey(MissingProductionSetting):
    """Production without GRANTLINE_NOTIFIER_SEALING_KEY."""


class SecretSealer:
    """Seals and opens endpoint secrets with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the notifier sealing key must be 32 bytes (base64 in the setting)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: SecretStr | None, *, environment: str) -> SecretSealer:
        """From the base64 setting; a random key outside production (secrets then last one process)."""
        if value is None:
            if environment == "production":
                raise MissingSealingKey(
                    "GRANTLINE_NOTIFIER_SEALING_KEY must be set in production (base64 of 32 random bytes)"
                )
            return cls(secrets.token_bytes(32))
        try:
            key = base64.b64decode(value.get_secret_value(), validate=True)
        except ValueError:
            raise ValueError("GRANTLINE_NOTIFIER_SEALING_KEY is not base64") from None
        return cls(key)

    def seal(self, secret: str, *, endpoint_id: str, tenant_id: str) -> bytes:
        """Nonce and ciphertext of the secret."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), _bound(endpoint_id, tenant_id))

    def open(self, sealed: bytes, *, endpoint_id: str, tenant_id: str) -> SecretStr:
        """The secret (raises ``cryptography.exceptions.InvalidTag`` for a row that is not this one's)."""
        plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _bound(endpoint_id, tenant_id))
        return SecretStr(plain.decode())


def _bound(endpoint_id: str, tenant_id: str) -> bytes:
    return f"notifier-endpoint\x00{tenant_id}\x00{endpoint_id}".encode()
