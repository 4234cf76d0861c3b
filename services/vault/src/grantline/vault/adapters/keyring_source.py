"""Where the master keyring comes from: a mounted file (re-read when it changes) or a variable."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grantline.vault.domain import Keyring, KeyringError, load_keyring_file, parse_keyring
from grantline.vault.settings import VaultSettings

_FINGERPRINT_INFO = b"grantline/audit-fingerprint/v1"


class KeyringSource:
    """Holds the current keyring; `reload_if_changed` picks up a rotated Secret file."""

    def __init__(self, settings: VaultSettings) -> None:
        self._file = settings.master_keyring_file
        self._env = settings.master_keyring
        self._mtime: float | None = None
        self.keyring = self._load()

    @property
    def file(self) -> Path | None:
        """The keyring file, when the keyring comes from one."""
        return self._file

    def _load(self) -> Keyring:
        if self._file is not None:
            self._mtime = _mtime(self._file)
            return load_keyring_file(self._file)
        if self._env is not None:
            return parse_keyring(self._env.get_secret_value())
        raise KeyringError("set GRANTLINE_MASTER_KEYRING_FILE or GRANTLINE_MASTER_KEYRING")

    def reload_if_changed(self) -> bool:
        """Re-read the file when it changed (e.g. after `grantline keys rotate-master`)."""
        if self._file is None:
            return False
        mtime = _mtime(self._file)
        if mtime == self._mtime:
            return False
        self.keyring = self._load()
        return True


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None


def fingerprint_key(settings: VaultSettings, keyring: Keyring) -> bytes:
    """The HMAC key of audit fingerprints: the setting, else HKDF-SHA256 of the active master key."""
    if settings.fingerprint_key is not None:
        try:
            raw = base64.b64decode(settings.fingerprint_key.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError("GRANTLINE_FINGERPRINT_KEY is not valid base64") from None
        if len(raw) < 16:
            raise KeyringError("GRANTLINE_FINGERPRINT_KEY must decode to at least 16 bytes")
        return raw
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_FINGERPRINT_INFO)
    return hkdf.derive(keyring.active_key.reveal())
