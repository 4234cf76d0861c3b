"""Byte layout of a sealed secret.

    version (1 byte) | key id length n (1 byte) | data key id (n ASCII bytes) | nonce (12) | ciphertext+tag

The header (version, length, key id) is part of the associated data, so it cannot be altered
without failing authentication, yet it can be read without decrypting.

Two versions exist. Version 1 (`UNBOUND_FORMAT_VERSION`) binds tenant, row and field; version 2
(`SEALED_FORMAT_VERSION`, written since) also binds the row's owner and provider. The version tells
the opener which associated data to rebuild, and lets `grantline keys reseal` find old values.
"""

from __future__ import annotations

import re

SEALED_FORMAT_VERSION = 2
UNBOUND_FORMAT_VERSION = 1
KNOWN_FORMAT_VERSIONS = frozenset({UNBOUND_FORMAT_VERSION, SEALED_FORMAT_VERSION})
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID_BYTES = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def build_header(data_key_id: str, version: int = SEALED_FORMAT_VERSION) -> bytes:
    """Return the sealed-value header for a (validated) data key id."""
    if version not in KNOWN_FORMAT_VERSIONS:
        raise ValueError(f"unknown sealed format version {version}")
    encoded = data_key_id.encode("ascii")
    return bytes((version, len(encoded))) + encoded


def parse_header(sealed: bytes | memoryview) -> tuple[int, str, int]:
    """Return `(version, data_key_id, header_length)`, or raise ValueError naming what is malformed."""
    if len(sealed) < 2:
        raise ValueError("sealed value is truncated")
    version = sealed[0]
    if version not in KNOWN_FORMAT_VERSIONS:
        raise ValueError(f"sealed value has unsupported format version {version}")
    end = 2 + sealed[1]
    if len(sealed) < end + NONCE_BYTES + TAG_BYTES:
        raise ValueError("sealed value is truncated")
    raw_id = bytes(sealed[2:end])
    if _KEY_ID_BYTES.fullmatch(raw_id) is None:
        raise ValueError("sealed value header has a malformed data key id")
    return version, raw_id.decode("ascii"), end
