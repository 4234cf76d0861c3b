"""The per-tenant hash chain and its streaming verification."""

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from grantline.audit.domain.hash_chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    AuditEntry,
    ChainHead,
    StoredRecord,
    append,
    canonical_bytes,
    chain_hash,
    hashed_fields,
    next_link,
)
from grantline.audit.domain.verification import BreakReason, verify_chain

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def entry(i: int, tenant_id: str = "acme") -> AuditEntry:
    return AuditEntry(
        tenant_id=tenant_id,
        record_id=uuid.UUID(int=i + 1),
        occurred_at=T0 + timedelta(seconds=i),
        received_at=T0 + timedelta(seconds=i, milliseconds=5),
        action="token.resolved",
        actor="vault",
        connection_id=f"conn-{i % 3}",
        provider="github",
        app_id="triage-bot",
        run_id=f"run-{i // 4}",
        tool="list_issues",
        user_id="u-1",
        outcome="success",
        detail={"scopes": ["repo", "read:org"], "fingerprint": f"hmac:{i:04x}", "note": "café ☕"},
    )


def chain(n: int, tenant_id: str = "acme", start: ChainHead | None = None) -> list[StoredRecord]:
    records: list[StoredRecord] = []
    head = start
    for i in range(n):
        record = append(head, entry(i, tenant_id))
        records.append(record)
        head = ChainHead.of(record)
    return records


# --- canonical bytes -------------------------------------------------------------------------------


def test_canonical_bytes_do_not_depend_on_dict_order() -> None:
    a = {"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": None}, "c": "é"}
    b = {"c": "é", "a": {"x": None, "y": [1, {"p": 2, "q": 1}]}, "b": 1}
    assert canonical_bytes(a) == canonical_bytes(b)
    assert canonical_bytes(a) == '{"a":{"x":null,"y":[1,{"p":2,"q":1}]},"b":1,"c":"é"}'.encode()


def test_canonical_bytes_keep_unicode_as_utf8() -> None:
    assert canonical_bytes({"n": "café ☕ 日本"}) == '{"n":"café ☕ 日本"}'.encode()


def test_canonical_datetimes_have_one_spelling() -> None:
    utc = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert (
        canonical_bytes({"t": utc}) == canonical_bytes({"t": paris}) == b'{"t":"2025-01-02T03:04:05.000000Z"}'
    )
    with pytest.raises(ValueError):
        canonical_bytes({"t": datetime(2025, 1, 2)})  # naive: which zone? refuse


def test_canonical_numbers_survive_a_jsonb_round_trip() -> None:
    assert canonical_bytes({"n": 100.0}) == canonical_bytes({"n": 100}) == b'{"n":100}'
    assert canonical_bytes({"n": 0.5}) == b'{"n":0.5}'
    with pytest.raises(ValueError):
        canonical_bytes({"n": float("nan")})


def test_canonical_bytes_refuse_ambiguous_values() -> None:
    with pytest.raises(TypeError):
        canonical_bytes({"d": {1: "a"}})
    with pytest.raises(TypeError):
        canonical_bytes({"d": {1, 2}})


def test_stored_record_reloaded_from_json_hashes_the_same() -> None:
    record = chain(1)[0]
    reloaded = StoredRecord.model_validate_json(record.model_dump_json())
    assert canonical_bytes(hashed_fields(reloaded, reloaded.seq)) == canonical_bytes(
        hashed_fields(record, record.seq)
    )
    assert verify_chain([reloaded], start=None).ok


# --- linking ---------------------------------------------------------------------------------------


def test_first_record_follows_genesis() -> None:
    link = next_link(None, entry(0))
    assert link.seq == 1
    assert link.prev_hash == GENESIS_HASH == "0" * 64
    assert link.hash == chain_hash(GENESIS_HASH, canonical_bytes(hashed_fields(entry(0), 1)))
    assert len(link.hash) == 64


def test_links_follow_the_previous_hash() -> None:
    records = chain(5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    assert next_link(ChainHead.of(records[-1]), entry(5)).seq == 6


def test_hash_depends_on_position_and_previous_hash() -> None:
    e = entry(0)
    assert next_link(None, e).hash != next_link(ChainHead(0, "1" * 64), e).hash
    assert next_link(ChainHead(1, GENESIS_HASH), e).hash != next_link(None, e).hash


# --- verification ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 50])
def test_an_intact_chain_verifies(n: int) -> None:
    records = chain(n)
    result = verify_chain(records, start=None)
    assert result.ok
    assert result.checked == n
    assert result.first_broken is None
    assert result.head == (ChainHead.of(records[-1]) if records else ChainHead(0, GENESIS_HASH))


EDITS: dict[str, Any] = {
    "tenant_id": "acme",  # replaced below per record by another tenant; see _edited
    "record_id": uuid.UUID(int=999_999),
    "occurred_at": T0 - timedelta(days=1),
    "received_at": T0 + timedelta(microseconds=1),
    "action": "connection.revoked",
    "actor": "admin:mallory",
    "connection_id": "conn-other",
    "provider": "gitlab",
    "app_id": "other-app",
    "run_id": "run-other",
    "tool": "delete_repo",
    "user_id": "u-2",
    "outcome": "denied",
    "detail": {"scopes": ["repo"], "fingerprint": "hmac:0000", "note": "café ☕"},
}


def _edited(record: StoredRecord, field: str) -> StoredRecord:
    value = "acme-other" if field == "tenant_id" else EDITS[field]
    return record.model_copy(update={field: value})


@pytest.mark.parametrize("field", [f for f in HASHED_FIELDS if f != "seq"])
@pytest.mark.parametrize("position", [0, 3, 7])
def test_editing_any_field_of_any_record_is_named(field: str, position: int) -> None:
    records = chain(8)
    records[position] = _edited(records[position], field)
    # Verify as the tenant, as the CLI does: a record moved to another tenant is named too.
    result = verify_chain(records, start=None, tenant_id="acme")
    assert not result.ok
    assert result.checked == position
    broken = result.first_broken
    assert broken is not None
    assert broken.seq == position + 1
    assert broken.record_id == records[position].record_id
    expected = BreakReason.TENANT_MISMATCH if field == "tenant_id" else BreakReason.HASH_MISMATCH
    assert broken.reason == expected


def test_editing_a_single_detail_value_is_detected() -> None:
    records = chain(4)
    detail = dict(records[2].detail, fingerprint="hmac:ffff")
    records[2] = records[2].model_copy(update={"detail": detail})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (3, BreakReason.HASH_MISMATCH)


def test_editing_the_stored_hash_is_detected() -> None:
    records = chain(4)
    records[1] = records[1].model_copy(update={"hash": "f" * 64})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (2, BreakReason.HASH_MISMATCH)


def test_garbage_in_a_hash_column_is_named_not_raised() -> None:
    records = chain(3)
    records[1] = records[1].model_copy(update={"hash": "not a hash"})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (2, BreakReason.HASH_MISMATCH)


def test_an_edit_that_rehashes_its_record_breaks_the_next_link() -> None:
    records = chain(5)
    forged = _edited(records[2], "outcome")
    link = next_link(ChainHead.of(records[1]), forged)
    records[2] = forged.model_copy(update={"hash": link.hash})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.record_id, broken.reason) == (
        4,
        records[3].record_id,
        BreakReason.PREV_HASH_MISMATCH,
    )


def test_editing_prev_hash_is_detected() -> None:
    records = chain(4)
    records[2] = records[2].model_copy(update={"prev_hash": "a" * 64})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (3, BreakReason.PREV_HASH_MISMATCH)


def test_editing_seq_is_detected() -> None:
    records = chain(4)
    records[2] = records[2].model_copy(update={"seq": 9})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (9, BreakReason.SEQ_GAP)


@pytest.mark.parametrize(
    ("deleted", "named_seq"),
    [(0, 2), (4, 6), (8, 10)],
    ids=["first", "middle", "last-but-one"],
)
def test_deleting_a_record_is_detected(deleted: int, named_seq: int) -> None:
    records = chain(10)
    after = records[deleted + 1]
    del records[deleted]
    result = verify_chain(records, start=None)
    assert not result.ok
    assert result.checked == deleted
    broken = result.first_broken
    assert broken is not None
    assert (broken.seq, broken.record_id, broken.reason) == (named_seq, after.record_id, BreakReason.SEQ_GAP)
    assert f"{deleted + 1}..{deleted + 1}" in broken.message


def test_deleting_a_record_and_renumbering_is_detected() -> None:
    records = chain(6)
    del records[2]
    records = [r.model_copy(update={"seq": i + 1}) for i, r in enumerate(records)]
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (3, BreakReason.PREV_HASH_MISMATCH)


def test_deleting_the_last_record_is_detected_against_the_known_head() -> None:
    records = chain(6)
    head = ChainHead.of(records[-1])
    assert verify_chain(records, start=None, end=head).ok
    result = verify_chain(records[:-1], start=None, end=head)
    assert not result.ok
    assert result.checked == 5
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (6, BreakReason.HEAD_MISMATCH)


def test_reordered_records_are_detected() -> None:
    records = chain(6)
    records[2], records[3] = records[3], records[2]
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (4, BreakReason.SEQ_GAP)


def test_swapped_contents_under_the_same_seqs_are_detected() -> None:
    records = chain(6)
    a, b = records[2], records[3]
    records[2] = b.model_copy(update={"seq": 3, "prev_hash": a.prev_hash, "hash": a.hash})
    records[3] = a.model_copy(update={"seq": 4, "prev_hash": b.prev_hash, "hash": b.hash})
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (3, BreakReason.HASH_MISMATCH)


def test_an_inserted_record_is_detected() -> None:
    records = chain(6)
    # A well-formed record, correctly linked after seq 3, slipped in before the real seq 4.
    intruder = append(ChainHead.of(records[2]), entry(100))
    records.insert(3, intruder)
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.record_id, broken.reason) == (4, records[4].record_id, BreakReason.SEQ_GAP)


def test_another_tenants_record_is_detected() -> None:
    records = chain(4)
    records[2] = chain(3, tenant_id="globex")[2]
    broken = verify_chain(records, start=None).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (3, BreakReason.TENANT_MISMATCH)


def test_verification_streams_and_stops_at_the_first_break() -> None:
    records = chain(6)
    records[1] = _edited(records[1], "actor")
    pulled: list[int] = []

    def rows() -> Iterator[StoredRecord]:
        for record in records:
            pulled.append(record.seq)
            yield record

    result = verify_chain(rows(), start=None)
    assert not result.ok
    assert pulled == [1, 2]
