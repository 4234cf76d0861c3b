"""Data key wrapping, sealing and opening secrets, bindings, tampering, rotation, fingerprints."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from grantline.vault.domain import (
    DataKey,
    DecryptionError,
    Keyring,
    RowKind,
    SealContext,
    SecretField,
    WrappedDataKey,
    fingerprint,
    generate_data_key,
    generate_master_key_entry,
    open_sealed,
    rewrap_data_key,
    seal,
    sealed_key_id,
    unwrap_data_key,
    wrap_data_key,
)

TENANT = "tenant-a"
OWNER = "user:alice"
PROVIDER = "github"
TOKEN = "ya29.canary-access-token-3f1c"
BASE = SealContext.for_connection(TENANT, "conn-1", owner=OWNER, provider=PROVIDER, field="access_token")


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_bytes("mk-1", {"mk-1": bytes(range(32))})


@pytest.fixture
def data_key() -> DataKey:
    return generate_data_key("dk-1")


@pytest.fixture
def context() -> SealContext:
    return BASE


def _flip(blob: bytes, index: int) -> bytes:
    mutable = bytearray(blob)
    mutable[index] ^= 0x01
    return bytes(mutable)


def _leak_forms(key: bytes) -> list[str]:
    return [base64.b64encode(key).decode(), key.hex(), repr(key)]


# Sealing and opening


def test_round_trip(data_key: DataKey, context: SealContext) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    assert open_sealed(data_key, context=context, sealed=sealed) == TOKEN
    assert TOKEN.encode() not in sealed


def test_round_trip_unicode_and_empty(data_key: DataKey, context: SealContext) -> None:
    for text in ["", "clé-secrète-🔑", "x" * 10_000]:
        assert (
            open_sealed(data_key, context=context, sealed=seal(data_key, context=context, plaintext=text))
            == text
        )


def test_open_with_lookup_by_header_key_id(data_key: DataKey, context: SealContext) -> None:
    other = generate_data_key("dk-2")
    keys = {k.key_id: k for k in (data_key, other)}
    sealed = seal(other, context=context, plaintext=TOKEN)
    assert sealed_key_id(sealed) == "dk-2"
    assert open_sealed(keys.__getitem__, context=context, sealed=sealed) == TOKEN


def test_lookup_returning_the_wrong_key_fails(data_key: DataKey, context: SealContext) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    with pytest.raises(DecryptionError) as info:
        open_sealed(lambda _kid: generate_data_key("dk-9"), context=context, sealed=sealed)
    assert info.value.reason == "key_id"


def test_every_seal_differs(data_key: DataKey, context: SealContext) -> None:
    sealed = {seal(data_key, context=context, plaintext=TOKEN) for _ in range(200)}
    assert len(sealed) == 200
    nonces = {s[len(data_key.header) : len(data_key.header) + 12] for s in sealed}
    assert len(nonces) == 200


def test_layout(data_key: DataKey, context: SealContext) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    assert sealed[0] == 2  # format version (bound to owner and provider)
    assert sealed[1] == len("dk-1")
    assert sealed[2:6] == b"dk-1"
    assert len(sealed) == 2 + 4 + 12 + len(TOKEN) + 16


@pytest.mark.parametrize(
    "moved",
    [
        dataclasses.replace(BASE, tenant_id="tenant-b"),
        dataclasses.replace(BASE, row_id="conn-2"),
        dataclasses.replace(BASE, field=SecretField.REFRESH_TOKEN),
        dataclasses.replace(BASE, row_kind=RowKind.PROVIDER_APP),
        dataclasses.replace(BASE, owner="user:bob"),
        dataclasses.replace(BASE, owner="workspace"),
        dataclasses.replace(BASE, provider="slack"),
    ],
    ids=["tenant", "connection", "field", "row_kind", "owner", "owner_workspace", "provider"],
)
def test_moved_ciphertext_fails(data_key: DataKey, context: SealContext, moved: SealContext) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    with pytest.raises(DecryptionError) as info:
        open_sealed(data_key, context=moved, sealed=sealed)
    assert info.value.reason == "authentication"
    message = str(info.value)
    assert "tenant, row, owner, provider or field" in message
    assert TOKEN not in message
    for form in _leak_forms(data_key.reveal()):
        assert form not in message


def test_ambiguous_parts_do_not_collide(data_key: DataKey) -> None:
    # Length prefixes keep ("a:b", "c") apart from ("a", "b:c") and similar concatenations.
    one = SealContext.for_connection("ab", "c", owner="user:a", provider="p", field="api_key")
    two = SealContext.for_connection("a", "bc", owner="user:a", provider="p", field="api_key")
    three = SealContext.for_connection("a", "b", owner="user:ap", provider="x", field="api_key")
    four = SealContext.for_connection("a", "b", owner="user:a", provider="px", field="api_key")
    assert one.aad != two.aad and three.aad != four.aad
    with pytest.raises(DecryptionError):
        open_sealed(data_key, context=two, sealed=seal(data_key, context=one, plaintext=TOKEN))


def test_wrong_data_key_fails(data_key: DataKey, context: SealContext) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    same_id_other_bytes = generate_data_key("dk-1")
    with pytest.raises(DecryptionError) as info:
        open_sealed(same_id_other_bytes, context=context, sealed=sealed)
    assert info.value.reason == "authentication"
    with pytest.raises(DecryptionError) as info:
        open_sealed(generate_data_key("dk-2"), context=context, sealed=sealed)
    assert info.value.reason == "key_id"
    assert "'dk-1'" in str(info.value)


@pytest.mark.parametrize("region", ["header_version", "header_key_id", "nonce", "ciphertext", "tag"])
def test_tampering_fails(data_key: DataKey, context: SealContext, region: str) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    header_length = len(data_key.header)
    index = {
        "header_version": 0,
        "header_key_id": 3,
        "nonce": header_length + 5,
        "ciphertext": header_length + 12 + 2,
        "tag": len(sealed) - 1,
    }[region]
    tampered = _flip(sealed, index)
    with pytest.raises(DecryptionError):
        open_sealed(data_key, context=context, sealed=tampered)
    # Also through a lookup that would hand out a key for any well-formed id.
    with pytest.raises(DecryptionError):
        open_sealed(lambda kid: DataKey(kid, data_key.reveal()), context=context, sealed=tampered)


def test_header_key_id_swap_is_authenticated(data_key: DataKey, context: SealContext) -> None:
    # Rewriting the header to name another key with the same bytes must still fail: the header is in the AAD.
    sealed = seal(data_key, context=context, plaintext=TOKEN)
    renamed = DataKey("dk-X", data_key.reveal())
    swapped = renamed.header + sealed[len(data_key.header) :]
    with pytest.raises(DecryptionError) as info:
        open_sealed(renamed, context=context, sealed=swapped)
    assert info.value.reason == "authentication"


@pytest.mark.parametrize("length", [0, 1, 5, 6 + 12, 6 + 12 + 15])
def test_truncated_fails(data_key: DataKey, context: SealContext, length: int) -> None:
    sealed = seal(data_key, context=context, plaintext=TOKEN)[:length]
    with pytest.raises(DecryptionError) as info:
        open_sealed(data_key, context=context, sealed=sealed)
    assert info.value.reason == "format"
    with pytest.raises(DecryptionError):
        open_sealed(lambda kid: data_key, context=context, sealed=sealed)


def test_sealed_key_id_rejects_garbage() -> None:
    with pytest.raises(DecryptionError, match="unsupported format version 9"):
        sealed_key_id(b"\x09" + b"\x00" * 40)
    with pytest.raises(DecryptionError, match="malformed data key id"):
        sealed_key_id(b"\x01\x02a/" + b"\x00" * 40)


def test_context_validation_and_helpers() -> None:
    with pytest.raises(ValueError):
        SealContext(TENANT, "user", "c", OWNER, PROVIDER, "access_token")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SealContext.for_connection(TENANT, "c", owner=OWNER, provider=PROVIDER, field="password")
    with pytest.raises(ValueError):
        SealContext.for_connection(TENANT, "c", owner="", provider=PROVIDER, field="api_key")
    with pytest.raises(ValueError):
        SealContext.for_connection(TENANT, "c", owner=OWNER, provider="", field="api_key")
    with pytest.raises(ValueError):
        SealContext.for_connection("", "c", owner=OWNER, provider=PROVIDER, field="access_token")
    context = SealContext.for_connection(TENANT, "c", owner=OWNER, provider=PROVIDER, field="access_token")
    assert context.row_kind is RowKind.CONNECTION
    assert context.with_field("refresh_token").field is SecretField.REFRESH_TOKEN
    assert context.with_field("refresh_token").aad != context.aad
    app = SealContext.for_provider_app(TENANT, "app-1", provider=PROVIDER)
    assert (app.row_kind, app.owner, app.field) == (RowKind.PROVIDER_APP, "tenant", SecretField.CLIENT_SECRET)
    assert context == SealContext(TENANT, "connection", "c", OWNER, PROVIDER, "access_token")  # type: ignore[arg-type]


# Data keys wrapped by master keys


def test_wrap_unwrap_round_trip(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = wrap_data_key(keyring, TENANT, data_key)
    assert (wrapped.master_key_id, wrapped.data_key_id) == ("mk-1", "dk-1")
    assert data_key.reveal() not in wrapped.ciphertext
    unwrapped = unwrap_data_key(keyring, TENANT, wrapped)
    assert unwrapped.key_id == "dk-1"
    assert unwrapped.reveal() == data_key.reveal()


def test_every_wrap_differs(keyring: Keyring, data_key: DataKey) -> None:
    assert wrap_data_key(keyring, TENANT, data_key) != wrap_data_key(keyring, TENANT, data_key)


@pytest.mark.parametrize("binding", ["tenant", "data_key_id", "master_key_id"])
def test_wrapped_key_bindings(keyring: Keyring, data_key: DataKey, binding: str) -> None:
    wrapped = wrap_data_key(keyring, TENANT, data_key)
    tenant = TENANT
    if binding == "tenant":
        tenant = "tenant-b"
    elif binding == "data_key_id":
        wrapped = dataclasses.replace(wrapped, data_key_id="dk-other")
    else:
        # Same bytes under another id: the master key id is bound too.
        keyring = Keyring.from_bytes(
            "mk-1", {"mk-1": keyring.active_key.reveal(), "mk-2": keyring.active_key.reveal()}
        )
        wrapped = dataclasses.replace(wrapped, master_key_id="mk-2")
    with pytest.raises(DecryptionError) as info:
        unwrap_data_key(keyring, tenant, wrapped)
    assert info.value.reason == "authentication"


@pytest.mark.parametrize("index", [0, 1, 13, 30, 60])
def test_tampered_wrapped_key_fails(keyring: Keyring, data_key: DataKey, index: int) -> None:
    wrapped = wrap_data_key(keyring, TENANT, data_key)
    tampered = dataclasses.replace(wrapped, ciphertext=_flip(wrapped.ciphertext, index))
    with pytest.raises(DecryptionError):
        unwrap_data_key(keyring, TENANT, tampered)
    with pytest.raises(DecryptionError, match="malformed"):
        unwrap_data_key(keyring, TENANT, dataclasses.replace(wrapped, ciphertext=wrapped.ciphertext[:-1]))


def test_unknown_master_key(keyring: Keyring, data_key: DataKey) -> None:
    wrapped = dataclasses.replace(wrap_data_key(keyring, TENANT, data_key), master_key_id="mk-gone")
    with pytest.raises(DecryptionError, match="'mk-gone', which is not in the keyring") as info:
        unwrap_data_key(keyring, TENANT, wrapped)
    assert info.value.reason == "unknown_master_key"


def test_master_rotation(keyring: Keyring, data_key: DataKey, context: SealContext) -> None:
    wrapped_old = wrap_data_key(keyring, TENANT, data_key)
    sealed = seal(data_key, context=context, plaintext=TOKEN)

    rotated = keyring.with_new_active_key(generate_master_key_entry("mk-2"))
    # During rotation: the old wrap still unwraps with the rotated keyring, and old ciphertexts open.
    assert open_sealed(unwrap_data_key(rotated, TENANT, wrapped_old), context=context, sealed=sealed) == TOKEN

    rewrapped = rewrap_data_key(rotated, TENANT, wrapped_old)
    assert (rewrapped.master_key_id, rewrapped.data_key_id) == ("mk-2", "dk-1")
    assert rewrapped.ciphertext != wrapped_old.ciphertext
    # Re-wrapping an already current key is a no-op, so an interrupted rotation can simply run again.
    assert rewrap_data_key(rotated, TENANT, rewrapped) is rewrapped

    # After retiring the old master key, the re-wrapped data key still opens the old ciphertext.
    retired = rotated.without_key("mk-1")
    assert open_sealed(unwrap_data_key(retired, TENANT, rewrapped), context=context, sealed=sealed) == TOKEN
    with pytest.raises(DecryptionError):
        unwrap_data_key(retired, TENANT, wrapped_old)


def test_rewrap_never_returns_plaintext(keyring: Keyring, data_key: DataKey) -> None:
    rotated = keyring.with_new_active_key()
    result = rewrap_data_key(rotated, TENANT, wrap_data_key(keyring, TENANT, data_key))
    assert isinstance(result, WrappedDataKey)
    assert data_key.reveal() not in result.ciphertext


def test_reprs_never_show_key_bytes(keyring: Keyring, data_key: DataKey, context: SealContext) -> None:
    wrapped = wrap_data_key(keyring, TENANT, data_key)
    rendered = [repr(data_key), str(data_key), repr(wrapped), str(wrapped), repr(context)]
    secrets_ = _leak_forms(data_key.reveal()) + _leak_forms(keyring.active_key.reveal())
    secrets_ += _leak_forms(wrapped.ciphertext)
    for text in rendered:
        for form in secrets_:
            assert form not in text
    assert repr(data_key) == "DataKey(key_id='dk-1', key=<redacted>)"


def test_data_key_validation() -> None:
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        DataKey("dk-1", b"\x00" * 16)
    with pytest.raises(ValueError, match="invalid key id"):
        DataKey("dk/1", b"\x00" * 32)
    assert generate_data_key().key_id.startswith("dk-")


# Fingerprints


def test_fingerprint() -> None:
    key = b"k" * 32
    value = fingerprint(key, TOKEN)
    assert value.startswith("hmac-sha256:")
    assert len(value) == len("hmac-sha256:") + 16
    assert TOKEN not in value
    assert fingerprint(key, TOKEN) == value
    assert fingerprint(key, TOKEN + "x") != value
    assert fingerprint(b"j" * 32, TOKEN) != value
    with pytest.raises(ValueError):
        fingerprint(b"short", TOKEN)
