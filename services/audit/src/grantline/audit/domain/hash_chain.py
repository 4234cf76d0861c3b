"""The per-tenant hash chain: the canonical bytes of a record and the link tying it to the one before."""

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# The prev_hash of a tenant's first record, before any retention cut.
GENESIS_HASH = "0" * 64
HASH_PATTERN = r"^[0-9a-f]{64}$"

# Bumping this changes every hash: a new chain format must come with a migration, never silently.
_CHAIN_DOMAIN = b"grantline.audit.chain.v1\n"

# Microseconds always written, so a value read back from Postgres (microsecond precision) re-hashes equal.
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Every field that goes into a record's hash. `seq` is included so a record cannot be moved to another
# position, `tenant_id` so it cannot be moved to another tenant's chain. prev_hash enters through chain_hash.
HASHED_FIELDS = (
    "tenant_id",
    "seq",
    "record_id",
    "occurred_at",
    "received_at",
    "action",
    "actor",
    "connection_id",
    "provider",
    "app_id",
    "run_id",
    "tool",
    "user_id",
    "outcome",
    "detail",
)


class AuditEntry(BaseModel):
    """An audit record as received, before it is given its place in the tenant's chain."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    tenant_id: str = Field(min_length=1, max_length=128)
    record_id: uuid.UUID
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    action: str = Field(min_length=1, max_length=100)
    actor: str = Field(min_length=1, max_length=200)
    connection_id: str | None = None
    provider: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    tool: str | None = None
    user_id: str | None = None
    outcome: str = "success"
    detail: dict[str, Any] = Field(default_factory=dict)


class StoredRecord(AuditEntry):
    """An audit record as stored: an entry plus its place (`seq`) and links in the chain."""

    # No pattern on the hashes: a row whose hash was overwritten with garbage must still load, so that
    # verification can name it instead of failing to parse it.
    seq: int = Field(ge=1)
    prev_hash: str
    hash: str


class ChainHead(NamedTuple):
    """The last link of a chain: its seq (0 before any record) and its hash."""

    seq: int
    hash: str

    @classmethod
    def of(cls, record: StoredRecord) -> "ChainHead":
        """The head a chain has once `record` is its last link."""
        return cls(record.seq, record.hash)


GENESIS = ChainHead(0, GENESIS_HASH)


class ChainLink(NamedTuple):
    """Where a new record goes: its seq, the hash it follows and its own hash."""

    seq: int
    prev_hash: str
    hash: str


# Exact types that are already canonical: checked first, as most record fields are plain strings or None.
_ALREADY_CANONICAL = frozenset({str, bool, int, type(None)})


def _canonical_value(value: Any) -> Any:
    """Reduce a value to JSON types in one deterministic spelling."""
    if type(value) in _ALREADY_CANONICAL:
        return value
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("audit values must be finite numbers")
        # jsonb does not keep the difference between 2 and 2.0 for every spelling (1e2 comes back as 100),
        # so integral floats are written as integers to re-hash equal after a round trip through Postgres.
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("audit datetimes must carry a time zone")
        return value.astimezone(UTC).strftime(_DATETIME_FORMAT)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            # json.dumps would turn 1 into "1" and let {1: a, "1": b} collide; refuse instead.
            if not isinstance(key, str):
                raise TypeError(f"audit detail keys must be strings, not {type(key).__name__}")
            out[key] = _canonical_value(item)
        return out
    if isinstance(value, list | tuple):
        return [_canonical_value(item) for item in value]
    raise TypeError(f"cannot put a {type(value).__name__} in an audit record")


def canonical_bytes(record_fields: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for `record_fields`: sorted-key compact UTF-8 JSON, UTC datetimes, unicode kept."""
    return json.dumps(
        _canonical_value(record_fields),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def hashed_fields(entry: AuditEntry, seq: int) -> dict[str, Any]:
    """The fields of `entry` at position `seq` that its hash covers."""
    values = {name: getattr(entry, name) for name in HASHED_FIELDS if name != "seq"}
    values["seq"] = seq
    return values


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """SHA-256 (hex) of a record's canonical bytes chained onto the previous record's hash."""
    # prev_hash is fixed-length hex, so concatenation is unambiguous.
    return hashlib.sha256(_CHAIN_DOMAIN + prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()


def record_hash(prev_hash: str, entry: AuditEntry, seq: int) -> str:
    """The hash `entry` has at position `seq` after `prev_hash`."""
    return chain_hash(prev_hash, canonical_bytes(hashed_fields(entry, seq)))


def next_link(prev: ChainHead | None, record: AuditEntry) -> ChainLink:
    """The seq, prev_hash and hash of `record` appended after `prev` (None: a new chain)."""
    head = prev if prev is not None else GENESIS
    seq = head.seq + 1
    return ChainLink(seq, head.hash, record_hash(head.hash, record, seq))


def append(prev: ChainHead | None, entry: AuditEntry) -> StoredRecord:
    """`entry` chained after `prev`, ready to store."""
    link = next_link(prev, entry)
    return StoredRecord(**entry.model_dump(), seq=link.seq, prev_hash=link.prev_hash, hash=link.hash)
