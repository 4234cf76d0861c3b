"""Streaming verification of a tenant's chain: names the first record that does not fit."""

import uuid
from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from grantline.audit.domain.hash_chain import GENESIS, ChainHead, StoredRecord, record_hash


class BreakReason(StrEnum):
    """Why a chain is broken; stable codes that the CLI and tests rely on."""

    HASH_MISMATCH = "hash_mismatch"  # the record's content no longer matches its hash: edited
    PREV_HASH_MISMATCH = "prev_hash_mismatch"  # it does not follow the record before it
    SEQ_GAP = "seq_gap"  # a seq is missing (deleted) or out of order (inserted, duplicated)
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # the chain does not start where the checkpoint says
    CHECKPOINT_SIGNATURE = "checkpoint_signature"  # the checkpoint is forged or signed by an unknown key
    TENANT_MISMATCH = "tenant_mismatch"  # a record of another tenant in this chain
    HEAD_MISMATCH = "head_mismatch"  # the chain ends before the head it is known to have: truncated


class BrokenLink(BaseModel):
    """The first place a chain breaks; record_id is None when the break is not a record's."""

    model_config = ConfigDict(frozen=True)

    seq: int
    record_id: uuid.UUID | None
    reason: BreakReason
    message: str


class VerificationResult(BaseModel):
    """Outcome of a verification: how many records fit, and the first that did not."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    first_broken: BrokenLink | None = None
    # The last record that verified (or the start): where an incremental verification resumes.
    head: ChainHead


class ChainVerifier:
    """Checks records one at a time, in seq order, keeping only the head: constant memory."""

    def __init__(self, *, start: ChainHead | None = None, tenant_id: str | None = None) -> None:
        self.start = start if start is not None else GENESIS
        self.tenant_id = tenant_id
        self.head = self.start
        self.checked = 0
        self.broken: BrokenLink | None = None

    def _break(self, record: StoredRecord, reason: BreakReason, message: str) -> BrokenLink:
        self.broken = BrokenLink(seq=record.seq, record_id=record.record_id, reason=reason, message=message)
        return self.broken

    def feed(self, record: StoredRecord) -> BrokenLink | None:
        """Check the next record; return the break if it does not fit (later records are not checked)."""
        if self.broken is not None:
            return self.broken
        if self.tenant_id is None:
            self.tenant_id = record.tenant_id
        if record.tenant_id != self.tenant_id:
            return self._break(record, BreakReason.TENANT_MISMATCH, "record belongs to another tenant")

        expected_seq = self.head.seq + 1
        # Only the first record after a checkpoint is checked against it; after that, links are links.
        after_checkpoint = self.checked == 0 and self.start.seq > 0
        if record.seq != expected_seq:
            if after_checkpoint:
                return self._break(
                    record,
                    BreakReason.CHECKPOINT_MISMATCH,
                    f"checkpoint ends at seq {self.start.seq}, first record is seq {record.seq}",
                )
            if record.seq > expected_seq:
                detail = f"records {expected_seq}..{record.seq - 1} are missing"
            else:
                detail = f"seq {record.seq} after seq {self.head.seq}: out of order or duplicated"
            return self._break(record, BreakReason.SEQ_GAP, detail)
        if record.prev_hash != self.head.hash:
            if after_checkpoint:
                return self._break(
                    record, BreakReason.CHECKPOINT_MISMATCH, "prev_hash is not the checkpoint's hash"
                )
            return self._break(
                record, BreakReason.PREV_HASH_MISMATCH, f"prev_hash is not the hash of seq {self.head.seq}"
            )
        try:
            expected_hash = record_hash(record.prev_hash, record, record.seq)
        except (TypeError, ValueError) as exc:
            return self._break(record, BreakReason.HASH_MISMATCH, f"record cannot be hashed: {exc}")
        if record.hash != expected_hash:
            return self._break(record, BreakReason.HASH_MISMATCH, "content does not match its hash")

        self.head = ChainHead.of(record)
        self.checked += 1
        return None

    def finish(self, end: ChainHead | None = None) -> VerificationResult:
        """The result so far; with `end`, also require the chain to reach that known head."""
        if self.broken is None and end is not None and self.head != end:
            self.broken = BrokenLink(
                seq=end.seq,
                record_id=None,
                reason=BreakReason.HEAD_MISMATCH,
                message=f"chain ends at seq {self.head.seq}, its known head is seq {end.seq}",
            )
        return VerificationResult(
            ok=self.broken is None, checked=self.checked, first_broken=self.broken, head=self.head
        )


def verify_chain(
    records: Iterable[StoredRecord],
    *,
    start: ChainHead | None,
    tenant_id: str | None = None,
    end: ChainHead | None = None,
) -> VerificationResult:
    """Verify `records` (seq order) from `start` (None: genesis); stop at and name the first break."""
    verifier = ChainVerifier(start=start, tenant_id=tenant_id)
    for record in records:
        if verifier.feed(record) is not None:
            break
    return verifier.finish(end)
