"""A received record encoded once for the ledger: its canonical bytes split where its seq goes.

Ingest hashes thousands of records per second. Building the canonical bytes of a record from its
fields costs far more than the SHA-256 itself, and only `seq` (and the previous hash) depends on where
the record lands in its chain. So the canonical JSON is encoded once, in two pieces around the seq,
and chaining a record is then a concatenation and a hash. The bytes are exactly those of
`hash_chain.canonical_bytes(hashed_fields(entry, seq))`: chains written this way verify with
`hash_chain` and the other way round.
"""

import json
import operator
import re
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

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
_SORTED_WITHOUT_SEQ = [name for name in sorted(HASHED_FIELDS) if name != "seq"]
_SEQ_AT = sorted(HASHED_FIELDS).index("seq")
# The canonical JSON object as two %-templates around the seq, keys in sorted order, e.g. '"action":%s'.
_BEFORE_SEQ = "{" + ",".join(f'"{name}":%s' for name in _SORTED_WITHOUT_SEQ[:_SEQ_AT]) + ',"seq":'
_AFTER_SEQ = "," + ",".join(f'"{name}":%s' for name in _SORTED_WITHOUT_SEQ[_SEQ_AT:]) + "}"
# A prepared entry's values are (tenant_id, *TEXT_FIELDS); these pick them in the templates' order.
_VALUE_FIELDS = ("tenant_id", *TEXT_FIELDS)
_DETAIL_AT = _VALUE_FIELDS.index("detail")
_pick_before = operator.itemgetter(*(_VALUE_FIELDS.index(name) for name in _SORTED_WITHOUT_SEQ[:_SEQ_AT]))
_pick_after = operator.itemgetter(*(_VALUE_FIELDS.index(name) for name in _SORTED_WITHOUT_SEQ[_SEQ_AT:]))
# JSON string encoding exactly as json.dumps(..., ensure_ascii=False) writes it.
_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]
# The spelling canonical_bytes gives a datetime, read back from Postgres or written by pydantic.
_CANONICAL_DATETIME = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class PreparedEntry(NamedTuple):
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


def prepare_fields(tenant_id: str, texts: Sequence[str | None]) -> PreparedEntry:
    """Prepare an entry from its TEXT_FIELDS values: canonical strings or None, the detail as canonical JSON.

    Raises UnicodeEncodeError for a string that is not valid Unicode (a lone surrogate).
    """
    values = (tenant_id, *texts)
    encoded: list[str | None] = ["null" if value is None else _encode_string(value) for value in values]
    encoded[_DETAIL_AT] = texts[-1]  # already canonical JSON
    record_id = texts[0]
    assert record_id is not None and len(values) == len(_VALUE_FIELDS)
    return PreparedEntry(
        tenant_id=tenant_id,
        record_id=record_id,
        before_seq=(_BEFORE_SEQ % _pick_before(encoded)).encode("utf-8"),
        after_seq=(_AFTER_SEQ % _pick_after(encoded)).encode("utf-8"),
        texts=tuple(texts),
    )


def prepare(entry: AuditEntry) -> PreparedEntry:
    """Prepare an `AuditEntry` (any valid one: the reference encoding gives its canonical values)."""
    canonical = json.loads(canonical_bytes(hashed_fields(entry, 0)))
    canonical["detail"] = canonical_bytes(entry.detail).decode("utf-8")
    return prepare_fields(entry.tenant_id, [canonical[name] for name in TEXT_FIELDS])


def canonical_datetime(value: datetime) -> str:
    """`value` (aware) spelled as the canonical bytes spell a datetime."""
    text = json.loads(canonical_bytes({"at": value}))["at"]
    assert isinstance(text, str)
    return text
