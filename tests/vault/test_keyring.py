"""Master keyring: parsing and strict validation, loading, rotation helpers, and no key bytes in reprs."""

from __future__ import annotations

import base64
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grantline.vault.domain import (
    KeyInUseError,
    Keyring,
    KeyringError,
    generate_data_key,
    generate_master_key_entry,
    load_keyring_env,
    load_keyring_file,
    master_key_usage,
    parse_keyring,
    remove_retired_key,
    wrap_data_key,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
B64_A = base64.b64encode(KEY_A).decode()
B64_B = base64.b64encode(KEY_B).decode()


def _doc(**overrides: object) -> str:
    document: dict[str, object] = {"active": "mk-2026-11", "keys": {"mk-2026-11": B64_A, "mk-2026-05": B64_B}}
    document.update(overrides)
    return json.dumps(document)


def _leak_forms(key: bytes) -> list[str]:
    return [base64.b64encode(key).decode(), key.hex(), repr(key), str(list(key))]


def test_parse_valid_keyring() -> None:
    keyring = parse_keyring(_doc())
    assert keyring.active_key_id == "mk-2026-11"
    assert keyring.key_ids == ("mk-2026-05", "mk-2026-11")
    assert keyring.active_key.reveal() == KEY_A
    assert keyring.get("mk-2026-05") is not None
    assert "mk-2026-05" in keyring
    assert keyring.get("nope") is None


def test_to_json_round_trips() -> None:
    keyring = parse_keyring(_doc())
    again = parse_keyring(keyring.to_json())
    assert again.active_key_id == keyring.active_key_id
    assert {k: again.get(k).reveal() for k in again} == {k: keyring.get(k).reveal() for k in keyring}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        (_doc(extra=1), "unknown field"),
        (json.dumps({"keys": {"mk-1": B64_A}}), "missing field"),
        (_doc(active=""), "'active' must be a key id"),
        (_doc(active=5), "'active' must be a key id"),
        (_doc(active="mk-other"), "'mk-other' is not in 'keys'"),
        (_doc(keys={}), "non-empty object"),
        (_doc(keys=[B64_A]), "non-empty object"),
        (_doc(active="bad id", keys={"bad id": B64_A}), "'active' must be a key id"),
        (_doc(active="mk-1", keys={"mk-1": B64_A, "x" * 65: B64_B}), "entry #2 has an invalid key id"),
        (_doc(active="mk-1", keys={"mk-1": 42}), "'mk-1' must be a base64 string"),
        (_doc(active="mk-1", keys={"mk-1": "!!!not-base64!!!"}), "'mk-1' is not valid base64"),
        (
            _doc(active="mk-1", keys={"mk-1": base64.b64encode(b"short").decode()}),
            "must decode to 32 bytes, not 5",
        ),
        ('{"active": "mk-1", "active": "mk-1", "keys": {}}', "repeats 'active'"),
        (
            json.dumps({"active": "mk-1", "keys": {"mk-1": B64_A}}).replace("}}", f', "mk-1": "{B64_B}"}}}}'),
            "repeats 'mk-1'",
        ),
    ],
)
def test_parse_errors_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(KeyringError) as info:
        parse_keyring(text)
    assert expected in str(info.value)


def test_errors_never_echo_key_material() -> None:
    # Key material pasted where an id belongs, a duplicated key, a wrong-length key, broken JSON around keys.
    bad_documents = [
        json.dumps({"active": "mk-1", "keys": {"mk-1": B64_A, B64_B: B64_B}}),
        json.dumps({"active": B64_A, "keys": {"mk-1": B64_A}}),
        json.dumps({"active": "mk-1", "keys": {"mk-1": B64_A + B64_B}}),
        json.dumps({"active": "mk-1", "keys": {"mk-1": B64_A}, B64_B: 1}),
        '{"active": "mk-1", "keys": {"mk-1": "' + B64_A + '", ',
    ]
    for text in bad_documents:
        with pytest.raises(KeyringError) as info:
            parse_keyring(text)
        message = str(info.value)
        for form in _leak_forms(KEY_A) + _leak_forms(KEY_B):
            assert form not in message
        # No chained exception (e.g. the JSON decoder's, which holds the document) is shown in a traceback.
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(_doc() + "\n")
    assert load_keyring_file(path).active_key_id == "mk-2026-11"


def test_load_from_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="cannot read keyring file"):
        load_keyring_file(tmp_path / "absent.json")


def test_load_from_env() -> None:
    keyring = load_keyring_env("GL_KEYS", environ={"GL_KEYS": _doc()})
    assert keyring.active_key_id == "mk-2026-11"


def test_load_from_env_missing_or_invalid() -> None:
    with pytest.raises(KeyringError, match="GL_KEYS is not set"):
        load_keyring_env("GL_KEYS", environ={})
    with pytest.raises(KeyringError, match="GL_KEYS: keyring is not valid JSON"):
        load_keyring_env("GL_KEYS", environ={"GL_KEYS": "{"})


def test_generate_master_key_entry() -> None:
    entry = generate_master_key_entry(now=datetime(2026, 11, 3, tzinfo=UTC))
    assert entry.key_id.startswith("mk-20261103-")
    assert len(entry.reveal()) == 32
    assert generate_master_key_entry().reveal() != entry.reveal()
    assert generate_master_key_entry("mk-custom").key_id == "mk-custom"
    with pytest.raises(KeyringError, match="invalid key id"):
        generate_master_key_entry("no spaces allowed")


def test_with_new_active_key_returns_new_keyring() -> None:
    keyring = parse_keyring(_doc())
    entry = generate_master_key_entry("mk-2027-05")
    rotated = keyring.with_new_active_key(entry)
    assert rotated.active_key_id == "mk-2027-05"
    assert rotated.key_ids == ("mk-2026-05", "mk-2026-11", "mk-2027-05")
    assert keyring.active_key_id == "mk-2026-11"  # the original is unchanged
    assert keyring.with_new_active_key().active_key_id not in keyring
    with pytest.raises(KeyringError, match="already in the keyring"):
        rotated.with_new_active_key(entry)


def test_without_key() -> None:
    keyring = parse_keyring(_doc())
    assert keyring.without_key("mk-2026-05").key_ids == ("mk-2026-11",)
    with pytest.raises(KeyringError, match="active key"):
        keyring.without_key("mk-2026-11")
    with pytest.raises(KeyringError, match="not in the keyring"):
        keyring.without_key("mk-unknown")


def test_removing_a_key_still_in_use_is_detected() -> None:
    old = parse_keyring(_doc(active="mk-2026-05"))
    wrapped = [wrap_data_key(old, f"tenant-{i}", generate_data_key()) for i in range(3)]
    rotated = old.with_new_active_key(generate_master_key_entry("mk-2027-05"))
    wrapped.append(wrap_data_key(rotated, "tenant-9", generate_data_key()))

    usage = master_key_usage(rotated, wrapped)
    assert usage == {"mk-2026-05": 3, "mk-2026-11": 0, "mk-2027-05": 1}
    with pytest.raises(KeyInUseError, match="still wraps 3 data key") as info:
        remove_retired_key(rotated, "mk-2026-05", usage)
    assert info.value.usage == 3
    assert remove_retired_key(rotated, "mk-2026-11", usage).key_ids == ("mk-2026-05", "mk-2027-05")


def test_usage_reports_master_keys_missing_from_the_keyring() -> None:
    old = parse_keyring(_doc(active="mk-2026-05"))
    wrapped = [wrap_data_key(old, "t", generate_data_key())]
    trimmed = Keyring.from_bytes("mk-x", {"mk-x": KEY_B})
    assert master_key_usage(trimmed, wrapped) == {"mk-x": 0, "mk-2026-05": 1}


def test_repr_and_str_never_show_key_bytes() -> None:
    keyring = parse_keyring(_doc())
    entry = generate_master_key_entry("mk-new")
    rendered = [repr(keyring), str(keyring), repr(keyring.active_key), str(entry), repr(entry), f"{keyring}"]
    for text in rendered:
        for form in _leak_forms(KEY_A) + _leak_forms(KEY_B) + _leak_forms(entry.reveal()):
            assert form not in text
    assert repr(keyring) == "Keyring(active_key_id='mk-2026-11', key_ids=['mk-2026-05', 'mk-2026-11'])"
    assert not hasattr(keyring, "__dict__")


def test_keys_cannot_be_pickled() -> None:
    keyring = parse_keyring(_doc())
    with pytest.raises(TypeError):
        pickle.dumps(keyring)
    with pytest.raises(TypeError):
        pickle.dumps(keyring.active_key)


def test_constructor_validation() -> None:
    with pytest.raises(KeyringError, match="must be exactly 32 bytes"):
        Keyring.from_bytes("mk-1", {"mk-1": b"short"})
    with pytest.raises(KeyringError, match="not in the keyring"):
        Keyring.from_bytes("mk-2", {"mk-1": KEY_A})
    with pytest.raises(KeyringError, match="no keys"):
        Keyring.from_bytes("mk-1", {})
