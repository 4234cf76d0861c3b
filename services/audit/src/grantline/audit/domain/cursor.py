"""Opaque, tamper-evident cursors for newest-first pagination of one tenant's records."""

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import SecretBytes

MIN_KEY_BYTES = 32
# Far above any real cursor; bounds the work an attacker can make us do before the MAC check.
MAX_CURSOR_CHARS = 1024
_VERSION = 1
# Distinct from the checkpoint's label, so one key can never make a cursor pass as a checkpoint or back.
_MAC_DOMAIN = b"grantline.audit.cursor.v1\n"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class CursorError(ValueError):
    """A cursor that is malformed, tampered with, or not the asking tenant's."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: records strictly older than (occurred_at, seq), or than seq."""

    tenant_id: str
    seq: int
    occurred_at: datetime | None = None


def _key_bytes(key: bytes | SecretBytes) -> bytes:
    raw = key.get_secret_value() if isinstance(key, SecretBytes) else key
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"cursor key is shorter than {MIN_KEY_BYTES} bytes")
    return raw


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise CursorError("malformed cursor")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CursorError("malformed cursor") from exc
    # Unused low bits of the last character would otherwise let two spellings decode alike.
    if _b64encode(data) != text:
        raise CursorError("malformed cursor")
    return data


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _MAC_DOMAIN + payload, hashlib.sha256).digest()


def encode_cursor(
    tenant_id: str, seq: int, *, key: bytes | SecretBytes, occurred_at: datetime | None = None
) -> str:
    """An opaque cursor for `tenant_id` at `seq` (and `occurred_at` when paging by time), MAC'd with `key`."""
    if seq < 0:
        raise ValueError("seq must not be negative")
    body: dict[str, object] = {"v": _VERSION, "t": tenant_id, "s": seq}
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        body["o"] = occurred_at.astimezone(UTC).isoformat()
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return f"{_b64encode(payload)}.{_b64encode(_mac(_key_bytes(key), payload))}"


def decode_cursor(cursor: str, *, tenant_id: str, key: bytes | SecretBytes) -> Cursor:
    """The position in `cursor`; raises CursorError unless it is intact and was issued for `tenant_id`."""
    raw_key = _key_bytes(key)
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise CursorError("malformed cursor")
    payload_text, mac_text = cursor.split(".")
    payload = _b64decode(payload_text)
    if not hmac.compare_digest(_mac(raw_key, payload), _b64decode(mac_text)):
        raise CursorError("cursor has been tampered with")
    # From here on the payload is ours, so a shape error is a version skew, not an attack.
    try:
        body = json.loads(payload)
        version, owner, seq, occurred = body["v"], body["t"], body["s"], body.get("o")
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorError("malformed cursor") from exc
    if version != _VERSION or not isinstance(owner, str) or type(seq) is not int or seq < 0:
        raise CursorError("unsupported cursor")
    # Checked after the MAC, and without naming the owner: the caller must not learn other tenants' ids.
    if owner != tenant_id:
        raise CursorError("cursor was issued for another tenant")
    occurred_at = None
    if occurred is not None:
        try:
            occurred_at = datetime.fromisoformat(occurred)
        except (TypeError, ValueError) as exc:
            raise CursorError("unsupported cursor") from exc
    return Cursor(tenant_id=owner, seq=seq, occurred_at=occurred_at)
