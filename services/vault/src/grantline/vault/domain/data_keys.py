"""Per-tenant data keys wrapped (AES-256-GCM) by a master key from the keyring.

The wrapped form records the master key id, so rotating the master key only re-wraps data keys:
values sealed under a data key keep opening whatever master key wraps it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from grantline.vault.domain.envelope import encode_aad_parts
from grantline.vault.domain.errors import DecryptionError
from grantline.vault.domain.key_material import KEY_BYTES, DataKey
from grantline.vault.domain.keyring import Keyring
from grantline.vault.domain.sealed_format import NONCE_BYTES, TAG_BYTES

WRAP_FORMAT_VERSION = 1
_WRAPPED_LENGTH = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A data key encrypted by a master key: what the database stores for a tenant.

    `ciphertext` is `version (1 byte) | nonce (12) | encrypted key + tag (48)`.
    """

    master_key_id: str
    data_key_id: str
    ciphertext: bytes

    def __repr__(self) -> str:
        return (
            f"WrappedDataKey(master_key_id={self.master_key_id!r}, data_key_id={self.data_key_id!r}, "
            f"ciphertext=<{len(self.ciphertext)} bytes>)"
        )

    __str__ = __repr__


def _wrap_aad(tenant_id: str, data_key_id: str, master_key_id: str) -> bytes:
    return b"grantline/data-key/v%d" % WRAP_FORMAT_VERSION + encode_aad_parts(
        tenant_id, data_key_id, master_key_id
    )


def wrap_data_key(keyring: Keyring, tenant_id: str, data_key: DataKey) -> WrappedDataKey:
    """Wrap `data_key` for `tenant_id` under the keyring's active master key."""
    master = keyring.active_key
    nonce = os.urandom(NONCE_BYTES)
    aad = _wrap_aad(tenant_id, data_key.key_id, master.key_id)
    encrypted = master.aead.encrypt(nonce, data_key.reveal(), aad)
    return WrappedDataKey(
        master_key_id=master.key_id,
        data_key_id=data_key.key_id,
        ciphertext=bytes((WRAP_FORMAT_VERSION,)) + nonce + encrypted,
    )


def unwrap_data_key(keyring: Keyring, tenant_id: str, wrapped: WrappedDataKey) -> DataKey:
    """Decrypt a wrapped data key with whichever keyring key wrapped it."""
    master = keyring.get(wrapped.master_key_id)
    if master is None:
        raise DecryptionError(
            f"data key {wrapped.data_key_id!r} is wrapped by master key {wrapped.master_key_id!r}, "
            "which is not in the keyring",
            reason="unknown_master_key",
        )
    blob = wrapped.ciphertext
    if len(blob) != _WRAPPED_LENGTH or blob[0] != WRAP_FORMAT_VERSION:
        raise DecryptionError(
            f"wrapped data key {wrapped.data_key_id!r} is malformed or of an unsupported version",
            reason="format",
        )
    aad = _wrap_aad(tenant_id, wrapped.data_key_id, wrapped.master_key_id)
    try:
        raw = master.aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionError(
            f"wrapped data key {wrapped.data_key_id!r} failed authentication: altered, "
            "or bound to another tenant or data key id",
            reason="authentication",
        ) from None
    return DataKey(wrapped.data_key_id, raw)


def rewrap_data_key(keyring: Keyring, tenant_id: str, wrapped: WrappedDataKey) -> WrappedDataKey:
    """Re-wrap under the active master key; already-current keys come back unchanged (resumable rotation)."""
    if wrapped.master_key_id == keyring.active_key_id:
        return wrapped
    return wrap_data_key(keyring, tenant_id, unwrap_data_key(keyring, tenant_id, wrapped))


def master_key_usage(keyring: Keyring, wrapped_keys: Iterable[WrappedDataKey]) -> dict[str, int]:
    """Count wrapped data keys per master key id: every keyring key (0 when unused), plus unknown ids."""
    counts = Counter(w.master_key_id for w in wrapped_keys)
    usage = dict.fromkeys(keyring.key_ids, 0)
    usage.update(counts)
    return usage
