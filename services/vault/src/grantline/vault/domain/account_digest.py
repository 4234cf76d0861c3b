"""Keyed digests of provider account ids, stored with connections and looked up by an index.

A webhook (Google RISC, GitHub, Slack) names the provider's account, not a connection. The vault
finds the connections through `connections.account_digest` (HMAC-SHA256 of provider and account id),
indexed, instead of scanning or unsealing. The key is derived (HKDF) from the tenant's first data
key version: tenant-specific, so one tenant's digests say nothing about another's, and stable across
master key and data key rotations (versions are never deleted, and re-wrapping keeps their bytes).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grantline.vault.domain.envelope import encode_aad_parts
from grantline.vault.domain.key_material import DataKey

_INFO = b"grantline/account-digest/v1"


def account_digest_key(first_data_key: DataKey) -> bytes:
    """The tenant's digest key, derived from its first data key version."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(first_data_key.reveal())


def account_digest(key: bytes, provider: str, account: str) -> bytes:
    """HMAC-SHA256 of the provider and the account id it names (length-prefixed, so no two pairs collide)."""
    return hmac.new(key, encode_aad_parts(provider, account), hashlib.sha256).digest()
