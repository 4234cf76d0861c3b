"""Symmetric keys (master and data keys) that keep their bytes out of every repr.

Each key object builds its AESGCM instance once, so the hot path never re-derives the cipher.
"""

from __future__ import annotations

import re
import secrets
from typing import NoReturn

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from grantline.vault.domain.sealed_format import UNBOUND_FORMAT_VERSION, build_header

KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_valid_key_id(key_id: object) -> bool:
    """Return whether `key_id` is a short id of the form `[A-Za-z0-9._-]{1,64}`."""
    # fullmatch, not match with `$`: `$` would accept a trailing newline.
    return isinstance(key_id, str) and KEY_ID_PATTERN.fullmatch(key_id) is not None


def validate_key_id(key_id: object, *, what: str = "key id") -> str:
    """Return `key_id` if valid, else raise ValueError (not echoing it: it may be misplaced key material)."""
    if not is_valid_key_id(key_id):
        raise ValueError(f"invalid {what}: must match [A-Za-z0-9._-]{{1,64}}")
    assert isinstance(key_id, str)
    return key_id


class SymmetricKey:
    """A key id with 32 secret bytes and its AES-256-GCM cipher; repr shows the id only."""

    __slots__ = ("_aead", "_key", "key_id")

    def __init__(self, key_id: str, key: bytes) -> None:
        validate_key_id(key_id)
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
            raise ValueError(f"key {key_id!r} must be exactly {KEY_BYTES} bytes")
        self.key_id = key_id
        self._key = bytes(key)
        self._aead = AESGCM(self._key)

    @property
    def aead(self) -> AESGCM:
        """The AES-256-GCM cipher for this key, built once."""
        return self._aead

    def reveal(self) -> bytes:
        """Return the raw key bytes; only for wrapping a data key or writing a keyring Secret."""
        return self._key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_id={self.key_id!r}, key=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would copy key bytes into caches, queues or files the vault does not control.
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class MasterKey(SymmetricKey):
    """A master key from the keyring; wraps data keys."""

    __slots__ = ()


class DataKey(SymmetricKey):
    """A tenant's unwrapped data key; seals and opens secrets.

    It also keeps the sealed-value headers for its id, built once, since every value it seals starts
    with `header` (and values sealed before owner binding with `unbound_header`).
    """

    __slots__ = ("header", "unbound_header")

    def __init__(self, key_id: str, key: bytes) -> None:
        super().__init__(key_id, key)
        self.header = build_header(key_id)
        self.unbound_header = build_header(key_id, UNBOUND_FORMAT_VERSION)


def generate_data_key(data_key_id: str | None = None) -> DataKey:
    """Return a fresh random data key; the id defaults to `dk-<16 hex>`."""
    key_id = data_key_id if data_key_id is not None else f"dk-{secrets.token_hex(8)}"
    return DataKey(key_id, secrets.token_bytes(KEY_BYTES))
