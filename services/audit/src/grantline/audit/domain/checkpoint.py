"""Retention: a signed checkpoint of the chain where a prefix is cut, so the rest still verifies."""

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretBytes

from grantline.audit.domain.hash_chain import HASH_PATTERN, ChainHead, StoredRecord, canonical_bytes
from grantline.audit.domain.verification import (
    BreakReason,
    BrokenLink,
    ChainVerifier,
    VerificationResult,
    verify_chain,
)

# HMAC-SHA256 keys shorter than the digest weaken it; refuse them rather than sign weakly.
MIN_KEY_BYTES = 32

# Distinct from the cursor's label, so one key can never make a cursor pass as a checkpoint or back.
_SIGNATURE_DOMAIN = b"grantline.audit.checkpoint.v1\n"


class CheckpointKeyring:
    """Checkpoint signing keys by key id; new checkpoints use the active one, old ones keep verifying."""

    def __init__(self, keys: Mapping[str, bytes | SecretBytes], active_key_id: str) -> None:
        self._keys: dict[str, SecretBytes] = {}
        for key_id, key in keys.items():
            secret = key if isinstance(key, SecretBytes) else SecretBytes(key)
            if len(secret.get_secret_value()) < MIN_KEY_BYTES:
                raise ValueError(f"checkpoint key {key_id!r} is shorter than {MIN_KEY_BYTES} bytes")
            self._keys[key_id] = secret
        if active_key_id not in self._keys:
            raise ValueError(f"active checkpoint key {active_key_id!r} is not in the keyring")
        self.active_key_id = active_key_id

    def secret(self, key_id: str) -> bytes | None:
        """The key bytes for `key_id`, or None when the keyring does not hold it."""
        key = self._keys.get(key_id)
        return key.get_secret_value() if key is not None else None

    def __repr__(self) -> str:
        return f"CheckpointKeyring(key_ids={sorted(self._keys)}, active_key_id={self.active_key_id!r})"


class Checkpoint(BaseModel):
    """The head of a tenant's chain at a retention cut: the last removed record's seq and hash."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    tenant_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=1)
    hash: str = Field(pattern=HASH_PATTERN)
    removed_count: int = Field(ge=1)
    created_at: AwareDatetime
    key_id: str = Field(min_length=1)
    signature: str

    @property
    def head(self) -> ChainHead:
        """Where verification of the remaining records starts."""
        return ChainHead(self.seq, self.hash)


def _signed_bytes(
    *, tenant_id: str, seq: int, hash: str, removed_count: int, created_at: datetime, key_id: str
) -> bytes:
    # key_id is signed too, so a signature cannot be re-labelled as another key's.
    fields = {
        "tenant_id": tenant_id,
        "seq": seq,
        "hash": hash,
        "removed_count": removed_count,
        "created_at": created_at,
        "key_id": key_id,
    }
    return _SIGNATURE_DOMAIN + canonical_bytes(fields)


def _signature(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_checkpoint(
    *,
    tenant_id: str,
    last_removed: ChainHead,
    removed_count: int,
    created_at: datetime,
    keyring: CheckpointKeyring,
) -> Checkpoint:
    """A checkpoint at `last_removed`, signed with the keyring's active key."""
    key_id = keyring.active_key_id
    key = keyring.secret(key_id)
    assert key is not None  # the keyring guarantees its active key exists
    created_at = created_at.astimezone(UTC)
    message = _signed_bytes(
        tenant_id=tenant_id,
        seq=last_removed.seq,
        hash=last_removed.hash,
        removed_count=removed_count,
        created_at=created_at,
        key_id=key_id,
    )
    return Checkpoint(
        tenant_id=tenant_id,
        seq=last_removed.seq,
        hash=last_removed.hash,
        removed_count=removed_count,
        created_at=created_at,
        key_id=key_id,
        signature=_signature(key, message),
    )


def verify_checkpoint(checkpoint: Checkpoint, keys: CheckpointKeyring) -> bool:
    """True when `checkpoint` carries a valid signature by a key of `keys`."""
    key = keys.secret(checkpoint.key_id)
    if key is None:
        return False
    message = _signed_bytes(
        tenant_id=checkpoint.tenant_id,
        seq=checkpoint.seq,
        hash=checkpoint.hash,
        removed_count=checkpoint.removed_count,
        created_at=checkpoint.created_at,
        key_id=checkpoint.key_id,
    )
    # Compared as bytes: compare_digest refuses non-ASCII str, and a forged signature may be anything.
    return hmac.compare_digest(_signature(key, message).encode(), checkpoint.signature.encode())


def verify_ledger(
    records: Iterable[StoredRecord],
    *,
    tenant_id: str,
    checkpoint: Checkpoint | None,
    keys: CheckpointKeyring,
    end: ChainHead | None = None,
) -> VerificationResult:
    """Verify a tenant's remaining records, starting from its latest checkpoint (None: no cut yet)."""
    if checkpoint is None:
        return verify_chain(records, start=None, tenant_id=tenant_id, end=end)
    broken: BrokenLink | None = None
    if not verify_checkpoint(checkpoint, keys):
        broken = BrokenLink(
            seq=checkpoint.seq,
            record_id=None,
            reason=BreakReason.CHECKPOINT_SIGNATURE,
            message=f"checkpoint at seq {checkpoint.seq} is not validly signed (key {checkpoint.key_id!r})",
        )
    elif checkpoint.tenant_id != tenant_id:
        # Validly signed, but for another tenant: copied across.
        broken = BrokenLink(
            seq=checkpoint.seq,
            record_id=None,
            reason=BreakReason.CHECKPOINT_MISMATCH,
            message="checkpoint belongs to another tenant",
        )
    if broken is not None:
        return VerificationResult(ok=False, checked=0, first_broken=broken, head=checkpoint.head)
    return verify_chain(records, start=checkpoint.head, tenant_id=tenant_id, end=end)


class RetentionPlan(BaseModel):
    """A cut: every record after `start` up to and including `last_removed` may be deleted."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    start: ChainHead
    last_removed: ChainHead
    removed_count: int

    def checkpoint(self, *, created_at: datetime, keyring: CheckpointKeyring) -> Checkpoint:
        """The signed checkpoint to write, in the same transaction, before deleting the records."""
        return sign_checkpoint(
            tenant_id=self.tenant_id,
            last_removed=self.last_removed,
            removed_count=self.removed_count,
            created_at=created_at,
            keyring=keyring,
        )


class ChainBrokenError(Exception):
    """Retention refused: the records it would cut do not verify, and cutting them would hide that."""

    def __init__(self, result: VerificationResult) -> None:
        super().__init__(result.first_broken.message if result.first_broken else "chain broken")
        self.result = result


def plan_retention(
    records: Iterable[StoredRecord],
    *,
    tenant_id: str,
    start: ChainHead | None,
    cutoff: datetime,
) -> RetentionPlan | None:
    """The longest prefix of `records` (seq order, from `start`) received before `cutoff`; None if empty.

    Only a whole prefix is cut: the first record received at or after `cutoff` ends it, even if later
    records are older, so no gap is ever left. The prefix is verified on the way, because signing a
    checkpoint over tampered records would launder the tampering.
    """
    verifier = ChainVerifier(start=start, tenant_id=tenant_id)
    for record in records:
        if record.received_at >= cutoff:
            break
        if verifier.feed(record) is not None:
            raise ChainBrokenError(verifier.finish())
    if verifier.checked == 0:
        return None
    return RetentionPlan(
        tenant_id=tenant_id,
        start=verifier.start,
        last_removed=verifier.head,
        removed_count=verifier.checked,
    )
