"""Known-answer and malformed-input vectors against the envelope's AES-256-GCM (issue 19 item 12).

Project Wycheproof's aes_gcm_test.json is not on PyPI (no package ships it), and its files may not be
copied here from a fetched repository. The vectors come instead from `cryptography-vectors` (a dev
dependency: the pyca/cryptography project's own vector package), which ships NIST CAVP's GCM test
files: encryption known answers, and decryption vectors NIST marks FAIL (altered tag, ciphertext or
associated data), across nonce lengths (8, 96, 1024 bits), tag lengths (32 to 128 bits), empty and
long plaintexts and associated data. The envelope only accepts 96-bit nonces and 128-bit tags, so
every vector of another size must be refused, valid or not; Wycheproof's other classes of cases
(tag bit flips, truncated tags, wrong associated data, empty plaintext, long associated data) are
generated below against sealed values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cryptography_vectors
import pytest

from grantline.vault.domain import DataKey, DecryptionError, SealContext, SecretField, open_sealed, seal
from grantline.vault.domain.envelope import decrypt_block, encrypt_block
from grantline.vault.domain.sealed_format import NONCE_BYTES, TAG_BYTES

GCM = Path(cryptography_vectors.__file__).parent / "ciphers" / "AES" / "GCM"


@dataclass(frozen=True)
class Vector:
    key: bytes
    iv: bytes
    ct: bytes
    aad: bytes
    tag: bytes
    pt: bytes | None  # None: NIST marks the vector FAIL (it must not decrypt)

    @property
    def our_sizes(self) -> bool:
        return len(self.iv) == NONCE_BYTES and len(self.tag) == TAG_BYTES


def nist_vectors(name: str) -> Iterator[Vector]:
    """The vectors of one CAVP .rsp file (sections of `Name = hex` lines; `FAIL` marks a bad one)."""
    fields: dict[str, str] = {}
    failed = False
    for line in [*(GCM / name).read_text().splitlines(), ""]:
        line = line.strip()
        if not line:
            if "Key" in fields:
                yield Vector(
                    key=bytes.fromhex(fields["Key"]),
                    iv=bytes.fromhex(fields["IV"]),
                    ct=bytes.fromhex(fields["CT"]),
                    aad=bytes.fromhex(fields["AAD"]),
                    tag=bytes.fromhex(fields["Tag"]),
                    pt=None if failed else bytes.fromhex(fields.get("PT", "")),
                )
            fields, failed = {}, False
        elif line == "FAIL":
            failed = True
        elif "=" in line and not line.startswith(("#", "[")):
            name_, _, value = line.partition("=")
            fields[name_.strip()] = value.strip()


DECRYPT = list(nist_vectors("gcmDecrypt256.rsp"))
ENCRYPT = list(nist_vectors("gcmEncryptExtIV256.rsp"))


def test_the_vector_files_hold_every_class_of_case() -> None:
    assert len(DECRYPT) > 3000 and len(ENCRYPT) > 3000
    ours = [v for v in DECRYPT if v.our_sizes]
    assert any(v.pt is None for v in ours) and any(v.pt is not None for v in ours)
    assert any(not v.pt and not v.ct for v in ours if v.pt is not None)  # empty plaintext
    assert max(len(v.aad) for v in ours) >= 90  # 720-bit associated data
    assert {len(v.iv) for v in DECRYPT} >= {1, 12, 128} and len({len(v.tag) for v in DECRYPT}) >= 6


def test_valid_vectors_of_the_envelopes_sizes_encrypt_and_decrypt_to_the_known_answers() -> None:
    checked = 0
    for vector in ENCRYPT + DECRYPT:
        if not vector.our_sizes or vector.pt is None:
            continue
        key = DataKey("dk-vector", vector.key)
        assert encrypt_block(key, vector.iv, vector.pt, vector.aad) == vector.ct + vector.tag
        assert decrypt_block(key, vector.iv, vector.ct + vector.tag, vector.aad) == vector.pt
        checked += 1
    assert checked > 500


def test_invalid_vectors_are_refused_as_failing_authentication() -> None:
    refused = 0
    for vector in DECRYPT:
        if not vector.our_sizes or vector.pt is not None:
            continue
        with pytest.raises(DecryptionError) as caught:
            decrypt_block(DataKey("dk-vector", vector.key), vector.iv, vector.ct + vector.tag, vector.aad)
        assert caught.value.reason == "authentication"
        refused += 1
    assert refused > 100


def test_vectors_with_another_nonce_or_tag_size_are_refused_before_decrypting() -> None:
    """Truncated tags (32..120 bits) and 8- or 1024-bit nonces: never accepted, valid or not."""
    refused = 0
    for vector in DECRYPT:
        if vector.our_sizes:
            continue
        key = DataKey("dk-vector", vector.key)
        with pytest.raises(DecryptionError) as caught:
            decrypt_block(key, vector.iv, vector.ct + vector.tag, vector.aad)
        assert caught.value.reason in {"format", "authentication"}
        if len(vector.iv) != NONCE_BYTES:
            assert caught.value.reason == "format"
            with pytest.raises(ValueError):
                encrypt_block(key, vector.iv, vector.pt or b"", vector.aad)
        refused += 1
    assert refused > 2000


def test_keys_other_than_256_bits_are_refused() -> None:
    for name in ("gcmDecrypt128.rsp", "gcmDecrypt192.rsp"):
        vector = next(nist_vectors(name))
        with pytest.raises(ValueError):
            DataKey("dk-vector", vector.key)


# Wycheproof's other classes, against whole sealed values.

KEY = DataKey("dk-tests", os.urandom(32))
CONTEXT = SealContext.for_connection(
    "tenant-a", "conn-1", owner="user:alice", provider="sandbox", field=SecretField.ACCESS_TOKEN
)


def test_every_flipped_bit_of_a_sealed_value_is_refused() -> None:
    sealed = seal(KEY, context=CONTEXT, plaintext="sbx_at_canary")
    for index in range(len(sealed)):
        for bit in range(8):
            altered = bytearray(sealed)
            altered[index] ^= 1 << bit
            with pytest.raises(DecryptionError):
                open_sealed(KEY, context=CONTEXT, sealed=bytes(altered))


def test_truncated_or_extended_sealed_values_are_refused() -> None:
    sealed = seal(KEY, context=CONTEXT, plaintext="sbx_at_canary")
    for cut in range(1, len(sealed)):
        with pytest.raises(DecryptionError):
            open_sealed(KEY, context=CONTEXT, sealed=sealed[:-cut])
    with pytest.raises(DecryptionError):
        open_sealed(KEY, context=CONTEXT, sealed=sealed + b"\x00")


def test_wrong_associated_data_is_refused() -> None:
    sealed = seal(KEY, context=CONTEXT, plaintext="sbx_at_canary")
    for other in (
        SealContext.for_connection(
            "tenant-b", "conn-1", owner="user:alice", provider="sandbox", field="access_token"
        ),
        SealContext.for_connection(
            "tenant-a", "conn-2", owner="user:alice", provider="sandbox", field="access_token"
        ),
        SealContext.for_connection(
            "tenant-a", "conn-1", owner="user:bob", provider="sandbox", field="access_token"
        ),
        SealContext.for_connection(
            "tenant-a", "conn-1", owner="user:alice", provider="google", field="access_token"
        ),
        CONTEXT.with_field(SecretField.REFRESH_TOKEN),
    ):
        with pytest.raises(DecryptionError) as caught:
            open_sealed(KEY, context=other, sealed=sealed)
        assert caught.value.reason == "authentication"
        assert "sbx_at_canary" not in str(caught.value)


def test_empty_plaintext_and_long_associated_data_round_trip() -> None:
    assert open_sealed(KEY, context=CONTEXT, sealed=seal(KEY, context=CONTEXT, plaintext="")) == ""
    long_owner = SealContext.for_connection(
        "tenant-a", "conn-1", owner="u" * 65_535, provider="sandbox", field=SecretField.ACCESS_TOKEN
    )
    sealed = seal(KEY, context=long_owner, plaintext="sbx_at_canary")
    assert open_sealed(KEY, context=long_owner, sealed=sealed) == "sbx_at_canary"
    with pytest.raises(ValueError):
        SealContext.for_connection(
            "tenant-a", "conn-1", owner="u" * 65_536, provider="sandbox", field="api_key"
        )


def test_nonces_are_fresh_for_each_seal() -> None:
    nonces = {seal(KEY, context=CONTEXT, plaintext="x")[len(KEY.header) :][:NONCE_BYTES] for _ in range(2000)}
    assert len(nonces) == 2000
