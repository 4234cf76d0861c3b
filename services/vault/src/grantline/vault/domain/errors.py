"""Errors raised by the envelope-encryption domain.

Messages name what is wrong (a key id, a field, a binding) but never carry key material or plaintext.
"""

from __future__ import annotations


class KeyringError(ValueError):
    """The master keyring is missing, malformed or cannot do what was asked."""


class KeyInUseError(KeyringError):
    """A master key cannot be removed because wrapped data keys still use it."""

    def __init__(self, key_id: str, usage: int) -> None:
        super().__init__(f"master key {key_id!r} still wraps {usage} data key(s); re-wrap them first")
        self.key_id = key_id
        self.usage = usage


class DecryptionError(Exception):
    """A sealed value or wrapped data key did not decrypt.

    `reason` is a short machine-readable code: `format` (malformed or unsupported bytes),
    `key_id` (sealed under another data key), `unknown_master_key`, `unbound` (a version 1 value
    while the vault requires the bound format), or `authentication` (altered, or bound to another
    tenant, row, owner, provider or field).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
