"""Tenant API keys and connect-session tokens: minted here, shown once, stored only as SHA-256.

Both carry the `glk_` prefix so that log redaction masks them wherever they slip into text; a connect
session token is `glk_cs_...`. They hold 256 random bits, so a plain SHA-256 is a safe lookup key
(no password stretching needed: there is nothing to guess).
"""

from __future__ import annotations

import hashlib
import re
import secrets

API_KEY_PREFIX = "glk_"
CONNECT_SESSION_PREFIX = "glk_cs_"
_TOKEN_BYTES = 32
# What a bearer value must look like before it is hashed and looked up (junk never reaches the store).
_BEARER_PATTERN = re.compile(r"glk_[A-Za-z0-9_-]{16,200}")


def new_api_key() -> str:
    """A fresh tenant API key (`glk_` + 43 url-safe characters); never one that looks like a session."""
    while True:
        key = API_KEY_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        if not key.startswith(CONNECT_SESSION_PREFIX):
            return key


def new_connect_session_token() -> str:
    """A fresh connect-session token (`glk_cs_` + 43 url-safe characters)."""
    return CONNECT_SESSION_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def credential_hash(value: str) -> str:
    """SHA-256 (hex) of a key or token: what is stored and looked up."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    """A short, non-secret hint to tell keys apart in listings (`glk_AbCd`)."""
    return key[: len(API_KEY_PREFIX) + 4]


def looks_like_credential(value: str) -> bool:
    """True when `value` has the shape of a key or token this service mints."""
    return bool(_BEARER_PATTERN.fullmatch(value))


def is_connect_session_token(value: str) -> bool:
    """True for a connect-session token (as opposed to a tenant API key)."""
    return value.startswith(CONNECT_SESSION_PREFIX)
