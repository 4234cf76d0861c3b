"""Sealing secrets under a tenant's data key (AES-256-GCM).

The associated data binds the format version, the data key id (through the authenticated header),
the tenant, the row (connection or provider app), the row's owner and provider, and the field, so a
sealed value copied to another row, tenant or field, or left in a row whose owner or provider was
changed, fails to open. Values sealed before owner binding (format version 1, "unbound") bind only
tenant, row and field; they open while `accept_unbound` is given, until `grantline keys reseal` has
sealed them again. This runs on the token-resolve hot path: no validation beyond what the context did
once, one cipher per data key, one AESGCM call per seal or open.
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
from grantline.vault.domain.sealed_format import (
    NONCE_BYTES,
    SEALED_FORMAT_VERSION,
    TAG_BYTES,
    UNBOUND_FORMAT_VERSION,
    parse_header,
)

DataKeyLookup = Callable[[str], DataKey]

_AUTH_FAILED = (
    "sealed value failed authentication: it was altered, or it belongs to another tenant, row, "
    "owner, provider or field"
)
_UNBOUND_REFUSED = (
    "sealed value is in the unbound format (version 1), which this vault refuses "
    "(GRANTLINE_REQUIRE_BOUND_SEALS); run `grantline keys reseal`"
)
# The owner bound into a provider app's secrets: an app belongs to its whole tenant, not to a user.
TENANT_OWNER = "tenant"


class RowKind(StrEnum):
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
    """Where a sealed secret lives: tenant, row (kind and id), the row's owner and provider, and field.

    The associated-data suffixes (bound, and unbound for version 1 values) are computed once here,
    not on every seal or open.
    """

    tenant_id: str
    row_kind: RowKind
    row_id: str
    owner: str
    provider: str
    field: SecretField
    aad: bytes = dataclasses.field(init=False, repr=False, compare=False)
    unbound_aad: bytes = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Normalise plain strings to the enums; an unknown kind or field raises ValueError.
        object.__setattr__(self, "row_kind", RowKind(self.row_kind))
        object.__setattr__(self, "field", SecretField(self.field))
        if not (self.tenant_id and self.row_id and self.owner and self.provider):
            raise ValueError("tenant_id, row_id, owner and provider must be non-empty")
        aad = b"grantline/sealed/v%d" % SEALED_FORMAT_VERSION + encode_aad_parts(
            self.tenant_id, self.row_kind.value, self.row_id, self.owner, self.provider, self.field.value
        )
        unbound_aad = b"grantline/sealed/v%d" % UNBOUND_FORMAT_VERSION + encode_aad_parts(
            self.tenant_id, self.row_kind.value, self.row_id, self.field.value
        )
        object.__setattr__(self, "aad", aad)
        object.__setattr__(self, "unbound_aad", unbound_aad)

    @classmethod
    def for_connection(
        cls, tenant_id: str, connection_id: str, *, owner: str, provider: str, field: SecretField | str
    ) -> SealContext:
        """Context for a connection's token or API key (`owner`: `user:<id>` or `workspace`)."""
        return cls(tenant_id, RowKind.CONNECTION, connection_id, owner, provider, SecretField(field))

    @classmethod
    def for_provider_app(
        cls,
        tenant_id: str,
        provider_app_id: str,
        *,
        provider: str,
        field: SecretField | str = SecretField.CLIENT_SECRET,
    ) -> SealContext:
        """Context for a provider app's client (or webhook) secret.

        When opening, pass as `provider` the provider the secret is about to be sent to (or checked
        for): an app row reached from a connection of another provider then fails to open, instead
        of handing its client secret to that provider's endpoints.
        """
        return cls(
            tenant_id, RowKind.PROVIDER_APP, provider_app_id, TENANT_OWNER, provider, SecretField(field)
        )

    def with_field(self, field: SecretField | str) -> SealContext:
        """The same row, another field."""
        return replace(self, field=SecretField(field))


def encrypt_block(data_key: DataKey, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM as every sealed value uses it: a 96-bit nonce, a full 128-bit tag appended."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
    return data_key.aead.encrypt(nonce, plaintext, aad)


def decrypt_block(
    data_key: DataKey, nonce: bytes | memoryview, ciphertext: bytes | memoryview, aad: bytes
) -> bytes:
    """Open what `encrypt_block` made; any other nonce or tag size is refused before decrypting.

    Raises DecryptionError (reason `format` or `authentication`); its message carries no key or data.
    """
    if len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise DecryptionError("sealed value has a nonce or tag of the wrong size", reason="format")
    try:
        return data_key.aead.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptionError(_AUTH_FAILED, reason="authentication") from None


def seal(data_key: DataKey, *, context: SealContext, plaintext: str) -> bytes:
    """Encrypt `plaintext` for `context` under `data_key`: header | nonce | ciphertext+tag."""
    header = data_key.header
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = encrypt_block(data_key, nonce, plaintext.encode("utf-8"), header + context.aad)
    return b"".join((header, nonce, ciphertext))


def sealed_key_id(sealed: bytes) -> str:
    """Return the data key id from a sealed value's header, without decrypting."""
    try:
        return parse_header(sealed)[1]
    except ValueError as exc:
        raise DecryptionError(str(exc), reason="format") from None


def sealed_format_version(sealed: bytes) -> int:
    """Return a sealed value's format version (1: unbound, 2: bound to owner and provider)."""
    try:
        return parse_header(sealed)[0]
    except ValueError as exc:
        raise DecryptionError(str(exc), reason="format") from None


def open_sealed(
    data_key: DataKey | DataKeyLookup,
    *,
    context: SealContext,
    sealed: bytes,
    accept_unbound: bool = False,
) -> str:
    """Decrypt a value made by `seal` for the same `context`.

    `data_key` is either the data key (its id must match the header) or a callable that returns the
    data key for the header's id. A version 1 (unbound) value opens only with `accept_unbound`.
    Raises DecryptionError; its message never carries key or plaintext.
    """
    if isinstance(data_key, DataKey):
        key = data_key
        header = key.header
        header_end = len(header)
        aad = context.aad
        # Comparing the cached header bytes checks version and key id without parsing.
        prefix = sealed[:header_end]
        if prefix != header:
            if not (accept_unbound and prefix == key.unbound_header):
                _refuse_header(key, sealed)
            header, aad = key.unbound_header, context.unbound_aad
        if len(sealed) < header_end + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("sealed value is truncated", reason="format")
    else:
        try:
            version, key_id, header_end = parse_header(sealed)
        except ValueError as exc:
            raise DecryptionError(str(exc), reason="format") from None
        if version == UNBOUND_FORMAT_VERSION and not accept_unbound:
            raise DecryptionError(_UNBOUND_REFUSED, reason="unbound")
        key = data_key(key_id)
        if key.key_id != key_id:
            raise DecryptionError(
                f"data key lookup returned key {key.key_id!r} for {key_id!r}", reason="key_id"
            )
        if version == UNBOUND_FORMAT_VERSION:
            header, aad = key.unbound_header, context.unbound_aad
        else:
            header, aad = key.header, context.aad
    view = memoryview(sealed)
    nonce_end = header_end + NONCE_BYTES
    plaintext = decrypt_block(key, view[header_end:nonce_end], view[nonce_end:], header + aad)
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("sealed value is not UTF-8 text", reason="format") from None


def reseal_bound(data_key: DataKey, *, context: SealContext, sealed: bytes) -> bytes | None:
    """Seal an unbound (version 1) value again in the bound format; None when it is bound already.

    The unbound value is authenticated first (tenant, row and field), so only what was sealed for
    this row is re-sealed; the owner and provider bound are the context's, read from the row now.
    """
    if sealed_format_version(sealed) == SEALED_FORMAT_VERSION:
        return None
    plaintext = open_sealed(data_key, context=context, sealed=sealed, accept_unbound=True)
    return seal(data_key, context=context, plaintext=plaintext)


def _refuse_header(key: DataKey, sealed: bytes) -> None:
    """Raise the DecryptionError that says why `sealed`'s header does not fit `key`."""
    try:
        version, key_id, _ = parse_header(sealed)
    except ValueError as exc:
        raise DecryptionError(str(exc), reason="format") from None
    if key_id != key.key_id:
        raise DecryptionError(
            f"sealed value is under data key {key_id!r}, not {key.key_id!r}", reason="key_id"
        )
    if version == UNBOUND_FORMAT_VERSION:
        raise DecryptionError(_UNBOUND_REFUSED, reason="unbound")
    raise DecryptionError("sealed value header does not match its data key", reason="format")
