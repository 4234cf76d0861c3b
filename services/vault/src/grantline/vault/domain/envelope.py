"""Sealing secrets under a tenant's data key (AES-256-GCM).

The associated data binds the format version, the data key id (through the authenticated header),
the tenant, the owner (connection or provider app) and the field, so a sealed value copied to another
row, tenant or field fails to open. This runs on the token-resolve hot path: no validation beyond
what the context did once, one cipher per data key, one AESGCM call per seal or open.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from cryptography.exceptions import InvalidTag

from grantline.vault.domain.errors import DecryptionError
from grantline.vault.domain.key_material import DataKey
from grantline.vault.domain.sealed_format import NONCE_BYTES, SEALED_FORMAT_VERSION, TAG_BYTES, parse_header

DataKeyLookup = Callable[[str], DataKey]

_AUTH_FAILED = (
    "sealed value failed authentication: it was altered, or it belongs to another tenant, owner or field"
)


class OwnerKind(StrEnum):
    """What row a sealed secret belongs to."""

    CONNECTION = "connection"
    PROVIDER_APP = "provider_app"


class SecretField(StrEnum):
    """Which secret of its owner a sealed value is."""

    ACCESS_TOKEN = "access_token"
    REFRESH_TOKEN = "refresh_token"
    ID_TOKEN = "id_token"
    CLIENT_SECRET = "client_secret"
    API_KEY = "api_key"


def encode_aad_parts(*parts: str) -> bytes:
    """Length-prefix each part (2 bytes, big endian) so no two part lists encode alike."""
    out = bytearray()
    for part in parts:
        encoded = part.encode("utf-8")
        if len(encoded) > 0xFFFF:
            raise ValueError("associated data part is longer than 65535 bytes")
        out += len(encoded).to_bytes(2, "big")
        out += encoded
    return bytes(out)


@dataclass(frozen=True, slots=True)
class SealContext:
    """Where a sealed secret lives: tenant, owner (kind and id) and field.

    The associated-data suffix is computed once here, not on every seal or open.
    """

    tenant_id: str
    owner_kind: OwnerKind
    owner_id: str
    field: SecretField
    aad: bytes = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Normalise plain strings to the enums; an unknown kind or field raises ValueError.
        object.__setattr__(self, "owner_kind", OwnerKind(self.owner_kind))
        object.__setattr__(self, "field", SecretField(self.field))
        if not self.tenant_id or not self.owner_id:
            raise ValueError("tenant_id and owner_id must be non-empty")
        aad = b"grantline/sealed/v%d" % SEALED_FORMAT_VERSION + encode_aad_parts(
            self.tenant_id, self.owner_kind.value, self.owner_id, self.field.value
        )
        object.__setattr__(self, "aad", aad)

    @classmethod
    def for_connection(cls, tenant_id: str, connection_id: str, field: SecretField | str) -> SealContext:
        """Context for a connection's token or API key."""
        return cls(tenant_id, OwnerKind.CONNECTION, connection_id, SecretField(field))

    @classmethod
    def for_provider_app(
        cls, tenant_id: str, provider_app_id: str, field: SecretField | str = SecretField.CLIENT_SECRET
    ) -> SealContext:
        """Context for a provider app's client secret."""
        return cls(tenant_id, OwnerKind.PROVIDER_APP, provider_app_id, SecretField(field))

    def with_field(self, field: SecretField | str) -> SealContext:
        """The same owner, another field."""
        return replace(self, field=SecretField(field))


def seal(data_key: DataKey, *, context: SealContext, plaintext: str) -> bytes:
    """Encrypt `plaintext` for `context` under `data_key`: header | nonce | ciphertext+tag."""
    header = data_key.header
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = data_key.aead.encrypt(nonce, plaintext.encode("utf-8"), header + context.aad)
    return b"".join((header, nonce, ciphertext))


def sealed_key_id(sealed: bytes) -> str:
    """Return the data key id from a sealed value's header, without decrypting."""
    try:
        return parse_header(sealed)[0]
    except ValueError as exc:
        raise DecryptionError(str(exc), reason="format") from None


def open_sealed(data_key: DataKey | DataKeyLookup, *, context: SealContext, sealed: bytes) -> str:
    """Decrypt a value made by `seal` for the same `context`.

    `data_key` is either the data key (its id must match the header) or a callable that returns the
    data key for the header's id. Raises DecryptionError; its message never carries key or plaintext.
    """
    if isinstance(data_key, DataKey):
        key = data_key
        header = key.header
        header_end = len(header)
        # Comparing the cached header bytes checks version and key id without parsing.
        if sealed[:header_end] != header:
            key_id = sealed_key_id(sealed)  # raises for a malformed header
            raise DecryptionError(
                f"sealed value is under data key {key_id!r}, not {key.key_id!r}", reason="key_id"
            )
        if len(sealed) < header_end + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("sealed value is truncated", reason="format")
    else:
        try:
            key_id, header_end = parse_header(sealed)
        except ValueError as exc:
            raise DecryptionError(str(exc), reason="format") from None
        key = data_key(key_id)
        if key.key_id != key_id:
            raise DecryptionError(
                f"data key lookup returned key {key.key_id!r} for {key_id!r}", reason="key_id"
            )
        header = key.header
    view = memoryview(sealed)
    nonce_end = header_end + NONCE_BYTES
    try:
        plaintext = key.aead.decrypt(view[header_end:nonce_end], view[nonce_end:], header + context.aad)
    except InvalidTag:
        raise DecryptionError(_AUTH_FAILED, reason="authentication") from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("sealed value is not UTF-8 text", reason="format") from None
