"""Byte layout of a sealed secret.

    version (1 byte) | key id length n (1 byte) | data key id (n ASCII bytes) | nonce (12) | ciphertext+tag

The header (version, length, key id) is part of the associated data, so it cannot be altered
without failing authentication, yet it can be read without decrypting.
"""

from __future__ import annotations

import re

SEALED_FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID_BYTES = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def build_header(data_key_id: str) -> bytes:
    """Return the sealed-value header for a (validated) data key id."""
    encoded = data_key_id.encode("ascii")
    return bytes((SEALED_FORMAT_VERSION, len(encoded))) + encoded


def parse_header(sealed: bytes | memoryview) -> tuple[str, int]:
    """Return `(data_key_id, header_length)`, or raise ValueError naming what is malformed."""
    if len(sealed) < 2:
        raise ValueError("sealed value is truncated")
    if sealed[0] != SEALED_FORMAT_VERSION:
        raise ValueError(f"sealed value has unsupported format version {sealed[0]}")
    end = 2 + sealed[1]
    if len(sealed) < end + NONCE_BYTES + TAG_BYTES:
        raise ValueError("sealed value is truncated")
    raw_id = bytes(sealed[2:end])
    if _KEY_ID_BYTES.fullmatch(raw_id) is None:
        raise ValueError("sealed value header has a malformed data key id")
    return raw_id.decode("ascii"), end
