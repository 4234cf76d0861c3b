"""The checkpoint keyring and cursor key, from settings (or derived, outside production)."""

import base64
import binascii
import hashlib
import json

from pydantic import SecretBytes

from grantline.audit.domain.checkpoint import CheckpointKeyring
from grantline.audit.settings import AuditSettings

# Development and test deployments get stable keys derived from a public label: never safe for
# production, which is why production refuses to start without configured keys.
_DEV_CHECKPOINT_KEY_ID = "dev-1"


class KeyConfigError(ValueError):
    """The configured audit keys are missing or malformed (the message never holds key material)."""


def _dev_key(label: str) -> bytes:
    return hashlib.sha256(f"grantline.audit.development-only.{label}".encode()).digest()


def _decode_key(name: str, encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{name} is not valid base64") from None


def checkpoint_keyring(settings: AuditSettings) -> CheckpointKeyring:
    """The keyring that signs and verifies retention checkpoints."""
    if settings.audit_checkpoint_keys is None:
        if settings.environment == "production":
            raise KeyConfigError("GRANTLINE_AUDIT_CHECKPOINT_KEYS must be set in production")
        return CheckpointKeyring({_DEV_CHECKPOINT_KEY_ID: _dev_key("checkpoint")}, _DEV_CHECKPOINT_KEY_ID)
    try:
        encoded = json.loads(settings.audit_checkpoint_keys.get_secret_value())
    except ValueError:
        raise KeyConfigError("GRANTLINE_AUDIT_CHECKPOINT_KEYS is not a JSON object") from None
    if not isinstance(encoded, dict) or not encoded or not all(isinstance(v, str) for v in encoded.values()):
        raise KeyConfigError('GRANTLINE_AUDIT_CHECKPOINT_KEYS must be {"<key id>": "<base64>", ...}')
    keys = {
        str(key_id): _decode_key(f"checkpoint key {key_id!r}", value) for key_id, value in encoded.items()
    }
    active = settings.audit_checkpoint_active_key or (next(iter(keys)) if len(keys) == 1 else None)
    if active is None:
        raise KeyConfigError("GRANTLINE_AUDIT_CHECKPOINT_ACTIVE_KEY must name one of several keys")
    try:
        return CheckpointKeyring(keys, active)
    except ValueError as error:
        raise KeyConfigError(str(error)) from None


def cursor_key(settings: AuditSettings) -> SecretBytes:
    """The MAC key of query cursors."""
    if settings.audit_cursor_key is None:
        if settings.environment == "production":
            raise KeyConfigError("GRANTLINE_AUDIT_CURSOR_KEY must be set in production")
        return SecretBytes(_dev_key("cursor"))
    key = _decode_key("GRANTLINE_AUDIT_CURSOR_KEY", settings.audit_cursor_key.get_secret_value())
    if len(key) < 32:
        raise KeyConfigError("GRANTLINE_AUDIT_CURSOR_KEY must decode to at least 32 bytes")
    return SecretBytes(key)
