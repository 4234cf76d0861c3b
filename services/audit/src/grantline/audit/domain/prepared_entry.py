"""A received record encoded once for the ledger: its canonical bytes split where its seq goes.

Ingest hashes thousands of records per second. Building the canonical bytes of a record from its
fields costs far more than the SHA-256 itself, and only `seq` (and the previous hash) depends on where
the record lands in its chain. So the canonical JSON is encoded once, in two pieces around the seq,
and chaining a record is then a concatenation and a hash. The bytes are exactly those of
`hash_chain.canonical_bytes(hashed_fields(entry, seq))`: chains written this way verify with
`hash_chain` and the other way round.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grantline.audit.domain.hash_chain import (
    HASHED_FIELDS,
    AuditEntry,
    ChainHead,
    ChainLink,
    canonical_bytes,
    chain_hash,
    hashed_fields,
)

# The columns a prepared entry carries as text, in ledger column order (seq and hashes excluded).
TEXT_FIELDS = tuple(name for name in HASHED_FIELDS if name not in ("tenant_id", "seq"))
_SORTED_FIELDS = sorted(HASHED_FIELDS)
_SEQ_AT = _SORTED_FIELDS.index("seq")
# JSON string encoding exactly as json.dumps(..., ensure_ascii=False) writes it.
_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]
# The spelling canonical_bytes gives a datetime, read back from Postgres or written by pydantic.
_CANONICAL_DATETIME = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """An entry ready to chain: its values as canonical text and its canonical bytes around seq."""

    tenant_id: str
    record_id: str
    # Values of TEXT_FIELDS as their canonical JSON scalars (datetimes in canonical spelling, the
    # detail as canonical JSON text); also what the ledger stores.
    texts: tuple[str | None, ...]
    before_seq: bytes
    after_seq: bytes

    def link(self, head: ChainHead) -> ChainLink:
        """Where this entry goes after `head`: its seq, the hash it follows and its own hash."""
        seq = head.seq + 1
        canonical = b"".join((self.before_seq, str(seq).encode("ascii"), self.after_seq))
        return ChainLink(seq, head.hash, chain_hash(head.hash, canonical))


def is_canonical_datetime(value: str) -> bool:
    """Whether `value` is already spelled as canonical_bytes spells an aware UTC datetime."""
    return _CANONICAL_DATETIME.fullmatch(value) is not None


def prepare_fields(tenant_id: str, texts: Mapping[str, Any]) -> PreparedEntry:
    """Prepare an entry from canonical values: strings, None, and the detail as canonical JSON text.

    Raises UnicodeEncodeError for a string that is not valid Unicode (a lone surrogate).
    """
    values = {name: texts[name] for name in TEXT_FIELDS}
    pieces: list[str] = []
    for name in _SORTED_FIELDS:
        if name == "seq":
            continue
        value = tenant_id if name == "tenant_id" else values[name]
        if name == "detail":
            encoded = value
        elif value is None:
            encoded = "null"
        else:
            encoded = _encode_string(value)
        pieces.append(f'"{name}":{encoded}')
    before = "{" + ",".join(pieces[:_SEQ_AT]) + ',"seq":'
    after = "," + ",".join(pieces[_SEQ_AT:]) + "}"
    return PreparedEntry(
        tenant_id=tenant_id,
        record_id=values["record_id"],
        texts=tuple(values[name] for name in TEXT_FIELDS),
        before_seq=before.encode("utf-8"),
        after_seq=after.encode("utf-8"),
    )


def prepare(entry: AuditEntry) -> PreparedEntry:
    """Prepare an `AuditEntry` (any valid one: the reference encoding gives its canonical values)."""
    canonical = json.loads(canonical_bytes(hashed_fields(entry, 0)))
    texts = {name: canonical[name] for name in TEXT_FIELDS}
    texts["detail"] = canonical_bytes(entry.detail).decode("utf-8")
    return prepare_fields(entry.tenant_id, texts)


def canonical_datetime(value: datetime) -> str:
    """`value` (aware) spelled as the canonical bytes spell a datetime."""
    text = json.loads(canonical_bytes({"at": value}))["at"]
    assert isinstance(text, str)
    return text
