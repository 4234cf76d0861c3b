"""Retention: signed checkpoints, cutting whole prefixes, and verifying what remains."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from grantline.audit.domain.checkpoint import (
    ChainBrokenError,
    Checkpoint,
    CheckpointKeyring,
    plan_retention,
    sign_checkpoint,
    verify_checkpoint,
    verify_ledger,
)
from grantline.audit.domain.hash_chain import AuditEntry, ChainHead, StoredRecord, append
from grantline.audit.domain.verification import BreakReason

T0 = datetime(2024, 1, 1, tzinfo=UTC)
KEY_A = b"a" * 32
KEY_B = b"b" * 32
KEYS = CheckpointKeyring({"ck-1": KEY_A}, active_key_id="ck-1")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def entry(i: int, tenant_id: str = "acme") -> AuditEntry:
    # One record a day, so a cutoff picks a prefix by date.
    return AuditEntry(
        tenant_id=tenant_id,
        record_id=uuid.UUID(int=i + 1),
        occurred_at=T0 + timedelta(days=i),
        received_at=T0 + timedelta(days=i, seconds=1),
        action="token.refreshed",
        actor="refresher",
        connection_id="conn-1",
        provider="google",
        outcome="success",
        detail={"i": i},
    )


def chain(n: int, tenant_id: str = "acme") -> list[StoredRecord]:
    records: list[StoredRecord] = []
    head: ChainHead | None = None
    for i in range(n):
        records.append(append(head, entry(i, tenant_id)))
        head = ChainHead.of(records[-1])
    return records


def cut(
    records: list[StoredRecord], days: int, start: Checkpoint | None = None
) -> tuple[Checkpoint, list[StoredRecord]]:
    """Run retention as the service will: plan, sign the checkpoint, then delete the prefix."""
    plan = plan_retention(
        records, tenant_id="acme", start=start.head if start else None, cutoff=T0 + timedelta(days=days)
    )
    assert plan is not None
    checkpoint = plan.checkpoint(created_at=NOW, keyring=KEYS)
    return checkpoint, records[plan.removed_count :]


# --- signing ---------------------------------------------------------------------------------------


def test_a_signed_checkpoint_verifies() -> None:
    cp = sign_checkpoint(
        tenant_id="acme", last_removed=ChainHead(4, "c" * 64), removed_count=4, created_at=NOW, keyring=KEYS
    )
    assert (cp.seq, cp.hash, cp.removed_count, cp.key_id) == (4, "c" * 64, 4, "ck-1")
    assert verify_checkpoint(cp, KEYS)


def test_a_checkpoint_survives_a_round_trip_through_storage() -> None:
    cp = sign_checkpoint(
        tenant_id="acme", last_removed=ChainHead(4, "c" * 64), removed_count=4, created_at=NOW, keyring=KEYS
    )
    assert verify_checkpoint(Checkpoint.model_validate_json(cp.model_dump_json()), KEYS)


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": "globex"},
        {"seq": 5},
        {"hash": "d" * 64},
        {"removed_count": 3},
        {"created_at": NOW + timedelta(seconds=1)},
        {"signature": "0" * 64},
        {"signature": "é"},
    ],
)
def test_any_change_to_a_checkpoint_breaks_its_signature(change: dict[str, object]) -> None:
    cp = sign_checkpoint(
        tenant_id="acme", last_removed=ChainHead(4, "c" * 64), removed_count=4, created_at=NOW, keyring=KEYS
    )
    assert not verify_checkpoint(cp.model_copy(update=change), KEYS)


def test_a_checkpoint_signed_with_another_key_or_an_unknown_key_id_is_refused() -> None:
    other = CheckpointKeyring({"ck-1": KEY_B}, active_key_id="ck-1")
    cp = sign_checkpoint(
        tenant_id="acme", last_removed=ChainHead(1, "c" * 64), removed_count=1, created_at=NOW, keyring=other
    )
    assert not verify_checkpoint(cp, KEYS)
    assert not verify_checkpoint(cp.model_copy(update={"key_id": "ck-9"}), KEYS)


def test_rotating_the_key_keeps_old_checkpoints_valid() -> None:
    old = sign_checkpoint(
        tenant_id="acme", last_removed=ChainHead(1, "c" * 64), removed_count=1, created_at=NOW, keyring=KEYS
    )
    rotated = CheckpointKeyring({"ck-1": KEY_A, "ck-2": KEY_B}, active_key_id="ck-2")
    new = sign_checkpoint(
        tenant_id="acme",
        last_removed=ChainHead(2, "c" * 64),
        removed_count=1,
        created_at=NOW,
        keyring=rotated,
    )
    assert new.key_id == "ck-2"
    assert verify_checkpoint(old, rotated)
    assert verify_checkpoint(new, rotated)


def test_the_keyring_refuses_weak_keys_and_never_prints_them() -> None:
    with pytest.raises(ValueError):
        CheckpointKeyring({"ck-1": b"short"}, active_key_id="ck-1")
    with pytest.raises(ValueError):
        CheckpointKeyring({"ck-1": KEY_A}, active_key_id="ck-2")
    assert "aaaa" not in repr(KEYS)


# --- planning a cut --------------------------------------------------------------------------------


def test_plan_cuts_every_record_received_before_the_cutoff() -> None:
    records = chain(10)
    plan = plan_retention(records, tenant_id="acme", start=None, cutoff=T0 + timedelta(days=4))
    assert plan is not None
    assert plan.removed_count == 4
    assert plan.last_removed == ChainHead.of(records[3])
    assert plan.start == ChainHead(0, "0" * 64)


def test_plan_cuts_only_a_whole_prefix() -> None:
    records = chain(6)
    # Seq 3 arrived late but is stamped "new"; seq 4 is old again. The cut must stop before seq 3.
    records[2] = records[2].model_copy(update={"received_at": T0 + timedelta(days=30)})
    plan = plan_retention(records, tenant_id="acme", start=None, cutoff=T0 + timedelta(days=5))
    assert plan is not None
    assert plan.last_removed.seq == 2


def test_plan_reads_only_as_far_as_the_cut() -> None:
    pulled: list[int] = []

    def rows() -> Iterator[StoredRecord]:
        for record in chain(10):
            pulled.append(record.seq)
            yield record

    plan_retention(rows(), tenant_id="acme", start=None, cutoff=T0 + timedelta(days=3))
    assert pulled == [1, 2, 3, 4]


def test_nothing_to_cut_plans_nothing() -> None:
    assert plan_retention(chain(3), tenant_id="acme", start=None, cutoff=T0) is None
    assert plan_retention([], tenant_id="acme", start=None, cutoff=NOW) is None


def test_plan_refuses_to_cut_tampered_records() -> None:
    records = chain(6)
    records[1] = records[1].model_copy(update={"actor": "mallory"})
    with pytest.raises(ChainBrokenError) as raised:
        plan_retention(records, tenant_id="acme", start=None, cutoff=T0 + timedelta(days=4))
    broken = raised.value.result.first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (2, BreakReason.HASH_MISMATCH)


# --- verifying after a cut -------------------------------------------------------------------------


def test_retention_with_a_checkpoint_keeps_the_chain_verifiable() -> None:
    checkpoint, remaining = cut(chain(10), days=4)
    assert (checkpoint.seq, checkpoint.removed_count) == (4, 4)
    assert remaining[0].seq == 5
    result = verify_ledger(remaining, tenant_id="acme", checkpoint=checkpoint, keys=KEYS)
    assert result.ok
    assert result.checked == 6


def test_successive_cuts_and_new_records_stay_verifiable() -> None:
    first, remaining = cut(chain(10), days=3)
    second, remaining = cut(remaining, days=7, start=first)
    assert (second.seq, second.removed_count) == (7, 4)
    remaining.append(append(ChainHead.of(remaining[-1]), entry(10)))
    assert verify_ledger(remaining, tenant_id="acme", checkpoint=second, keys=KEYS).ok


def test_cutting_every_record_lets_the_chain_continue_from_the_checkpoint() -> None:
    checkpoint, remaining = cut(chain(5), days=100)
    assert remaining == []
    assert verify_ledger([], tenant_id="acme", checkpoint=checkpoint, keys=KEYS).ok
    later = [append(checkpoint.head, entry(5))]
    assert later[0].seq == 6
    assert verify_ledger(later, tenant_id="acme", checkpoint=checkpoint, keys=KEYS).ok


def test_a_forged_checkpoint_is_detected() -> None:
    checkpoint, remaining = cut(chain(10), days=4)
    # Someone deleted two more records and moved the checkpoint forward to hide it.
    forged = checkpoint.model_copy(update={"seq": 6, "hash": remaining[1].hash, "removed_count": 6})
    result = verify_ledger(remaining[2:], tenant_id="acme", checkpoint=forged, keys=KEYS)
    assert not result.ok
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.record_id) == (6, None)
    assert result.first_broken.reason == BreakReason.CHECKPOINT_SIGNATURE


def test_a_checkpoint_signed_with_a_foreign_key_is_detected() -> None:
    records = chain(6)
    foreign = CheckpointKeyring({"ck-1": KEY_B}, active_key_id="ck-1")
    forged = sign_checkpoint(
        tenant_id="acme",
        last_removed=ChainHead.of(records[2]),
        removed_count=3,
        created_at=NOW,
        keyring=foreign,
    )
    result = verify_ledger(records[3:], tenant_id="acme", checkpoint=forged, keys=KEYS)
    assert result.first_broken is not None
    assert result.first_broken.reason == BreakReason.CHECKPOINT_SIGNATURE


def test_a_missing_checkpoint_after_a_cut_is_detected() -> None:
    _, remaining = cut(chain(10), days=4)
    result = verify_ledger(remaining, tenant_id="acme", checkpoint=None, keys=KEYS)
    assert not result.ok
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (5, BreakReason.SEQ_GAP)


def test_a_record_left_before_the_checkpoint_is_detected() -> None:
    records = chain(10)
    checkpoint, _ = cut(records, days=4)
    # The checkpoint was written but the delete did not happen (or a record was put back).
    result = verify_ledger(records[3:], tenant_id="acme", checkpoint=checkpoint, keys=KEYS)
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (4, BreakReason.CHECKPOINT_MISMATCH)


def test_records_deleted_just_after_the_checkpoint_are_detected() -> None:
    checkpoint, remaining = cut(chain(10), days=4)
    result = verify_ledger(remaining[1:], tenant_id="acme", checkpoint=checkpoint, keys=KEYS)
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (6, BreakReason.CHECKPOINT_MISMATCH)


def test_a_checkpoint_whose_hash_is_not_the_chains_is_detected() -> None:
    records = chain(10)
    # Validly signed, but over a head the remaining chain does not follow.
    checkpoint = sign_checkpoint(
        tenant_id="acme", last_removed=ChainHead(4, "e" * 64), removed_count=4, created_at=NOW, keyring=KEYS
    )
    result = verify_ledger(records[4:], tenant_id="acme", checkpoint=checkpoint, keys=KEYS)
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (5, BreakReason.CHECKPOINT_MISMATCH)


def test_another_tenants_checkpoint_is_refused() -> None:
    records = chain(10, tenant_id="acme")
    globex = sign_checkpoint(
        tenant_id="globex",
        last_removed=ChainHead.of(records[3]),
        removed_count=4,
        created_at=NOW,
        keyring=KEYS,
    )
    result = verify_ledger(records[4:], tenant_id="acme", checkpoint=globex, keys=KEYS)
    assert result.first_broken is not None
    assert result.first_broken.reason == BreakReason.CHECKPOINT_MISMATCH


def test_an_edit_after_the_checkpoint_is_still_named() -> None:
    checkpoint, remaining = cut(chain(10), days=4)
    remaining[2] = remaining[2].model_copy(update={"detail": {"i": 0}})
    result = verify_ledger(remaining, tenant_id="acme", checkpoint=checkpoint, keys=KEYS)
    assert result.checked == 2
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.record_id, result.first_broken.reason) == (
        7,
        remaining[2].record_id,
        BreakReason.HASH_MISMATCH,
    )
