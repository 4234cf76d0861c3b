"""The master keyring: key id -> 32-byte master key, plus the active id.

It comes from a JSON document that a Kubernetes Secret mounts as a file or injects as an environment
variable, never from the database, so a database dump alone never decrypts anything:

    {"active": "mk-2026-11", "keys": {"mk-2026-11": "<base64 of 32 bytes>", "mk-2026-05": "..."}}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from grantline.vault.domain.errors import KeyInUseError, KeyringError
from grantline.vault.domain.key_material import KEY_BYTES, MasterKey, is_valid_key_id

DEFAULT_KEYRING_ENV = "GRANTLINE_MASTER_KEYRING"
_TOP_LEVEL_FIELDS = frozenset({"active", "keys"})


class Keyring:
    """An immutable set of master keys with one active key (used for new wraps)."""

    __slots__ = ("_keys", "active_key_id")

    def __init__(self, active_key_id: str, keys: Mapping[str, MasterKey]) -> None:
        if not keys:
            raise KeyringError("keyring has no keys")
        if active_key_id not in keys:
            raise KeyringError(f"active key {active_key_id!r} is not in the keyring")
        for key_id, key in keys.items():
            if key.key_id != key_id:
                raise KeyringError(f"key stored under {key_id!r} has id {key.key_id!r}")
        self.active_key_id = active_key_id
        self._keys: Mapping[str, MasterKey] = MappingProxyType(dict(keys))

    @classmethod
    def from_bytes(cls, active_key_id: str, keys: Mapping[str, bytes]) -> Keyring:
        """Build a keyring from raw 32-byte keys."""
        try:
            return cls(active_key_id, {key_id: MasterKey(key_id, key) for key_id, key in keys.items()})
        except ValueError as exc:
            raise KeyringError(str(exc)) from None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id, sorted."""
        return tuple(sorted(self._keys))

    @property
    def active_key(self) -> MasterKey:
        """The key new data keys are wrapped with."""
        return self._keys[self.active_key_id]

    def get(self, key_id: str) -> MasterKey | None:
        """Return the master key with this id, or None."""
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.key_ids)

    def __len__(self) -> int:
        return len(self._keys)

    def with_new_active_key(self, entry: MasterKey | None = None) -> Keyring:
        """Return a new keyring with `entry` (default: a freshly generated key) added and made active."""
        new_key = entry if entry is not None else generate_master_key_entry()
        if new_key.key_id in self._keys:
            raise KeyringError(f"key {new_key.key_id!r} is already in the keyring")
        return Keyring(new_key.key_id, {**self._keys, new_key.key_id: new_key})

    def without_key(self, key_id: str) -> Keyring:
        """Return a new keyring without `key_id`; the active key cannot be removed.

        This does not know whether data keys still use the key: see `remove_retired_key`.
        """
        if key_id not in self._keys:
            raise KeyringError(f"key {key_id!r} is not in the keyring")
        if key_id == self.active_key_id:
            raise KeyringError(f"key {key_id!r} is the active key and cannot be removed")
        return Keyring(self.active_key_id, {k: v for k, v in self._keys.items() if k != key_id})

    def to_json(self) -> str:
        """Serialise to the keyring JSON format (contains key material: write it only to a Secret)."""
        document = {
            "active": self.active_key_id,
            "keys": {k: base64.b64encode(self._keys[k].reveal()).decode("ascii") for k in self.key_ids},
        }
        return json.dumps(document, indent=2) + "\n"

    def __repr__(self) -> str:
        return f"Keyring(active_key_id={self.active_key_id!r}, key_ids={list(self.key_ids)!r})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("Keyring cannot be pickled")


def generate_master_key_entry(key_id: str | None = None, *, now: datetime | None = None) -> MasterKey:
    """Return a new random master key; the id defaults to `mk-<YYYYMMDD>-<6 hex>`."""
    if key_id is None:
        when = now if now is not None else datetime.now(UTC)
        key_id = f"mk-{when:%Y%m%d}-{secrets.token_hex(3)}"
    try:
        return MasterKey(key_id, secrets.token_bytes(KEY_BYTES))
    except ValueError as exc:
        raise KeyringError(str(exc)) from None


def remove_retired_key(keyring: Keyring, key_id: str, usage: Mapping[str, int]) -> Keyring:
    """Return `keyring` without `key_id`, refusing while `usage` says data keys still use it.

    `usage` maps master key id -> number of wrapped data keys (see `master_key_usage`).
    """
    in_use = usage.get(key_id, 0)
    if in_use > 0:
        raise KeyInUseError(key_id, in_use)
    return keyring.without_key(key_id)


def parse_keyring(text: str | bytes) -> Keyring:
    """Parse and strictly validate a keyring JSON document."""
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_fields)
    except KeyringError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        # Only the position is reported: the decoder's own message may quote the document.
        position = getattr(exc, "pos", None)
        where = f" at character {position}" if position is not None else ""
        raise KeyringError(f"keyring is not valid JSON{where}") from None
    return _keyring_from_document(document)


def load_keyring_file(path: str | os.PathLike[str]) -> Keyring:
    """Load the keyring from a JSON file (e.g. a mounted Kubernetes Secret)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise KeyringError(f"cannot read keyring file {os.fspath(path)!r}: {exc.strerror}") from None
    return parse_keyring(text)


def load_keyring_env(name: str = DEFAULT_KEYRING_ENV, environ: Mapping[str, str] | None = None) -> Keyring:
    """Load the keyring from the JSON value of environment variable `name`."""
    source = os.environ if environ is None else environ
    value = source.get(name)
    if value is None or not value.strip():
        raise KeyringError(f"environment variable {name} is not set or empty")
    try:
        return parse_keyring(value)
    except KeyringError as exc:
        raise KeyringError(f"{name}: {exc}") from None


def _reject_duplicate_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            shown = repr(name) if is_valid_key_id(name) else "a field"
            raise KeyringError(f"keyring JSON repeats {shown}")
        result[name] = value
    return result


def _keyring_from_document(document: object) -> Keyring:
    if not isinstance(document, dict):
        raise KeyringError("keyring must be a JSON object with 'active' and 'keys'")
    unknown = set(document) - _TOP_LEVEL_FIELDS
    if unknown:
        shown = ", ".join(repr(n) if is_valid_key_id(n) else "<invalid name>" for n in sorted(unknown))
        raise KeyringError(f"keyring has unknown field(s): {shown}")
    missing = _TOP_LEVEL_FIELDS - set(document)
    if missing:
        raise KeyringError(f"keyring is missing field(s): {', '.join(repr(n) for n in sorted(missing))}")
    active = document["active"]
    if not is_valid_key_id(active):
        raise KeyringError("keyring 'active' must be a key id matching [A-Za-z0-9._-]{1,64}")
    entries = document["keys"]
    if not isinstance(entries, dict) or not entries:
        raise KeyringError("keyring 'keys' must be a non-empty object of key id -> base64 key")
    keys: dict[str, bytes] = {}
    for index, (key_id, encoded) in enumerate(entries.items()):
        if not is_valid_key_id(key_id):
            # Not echoed: a malformed id is sometimes key material pasted in the wrong place.
            raise KeyringError(f"keyring 'keys' entry #{index + 1} has an invalid key id")
        keys[key_id] = _decode_key(key_id, encoded)
    if active not in keys:
        raise KeyringError(f"keyring 'active' key {active!r} is not in 'keys'")
    return Keyring.from_bytes(active, keys)


def _decode_key(key_id: str, encoded: object) -> bytes:
    if not isinstance(encoded, str):
        raise KeyringError(f"keyring key {key_id!r} must be a base64 string")
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"keyring key {key_id!r} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"keyring key {key_id!r} must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return raw
