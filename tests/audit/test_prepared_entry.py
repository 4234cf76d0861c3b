"""The ingest fast path hashes and decodes exactly as the reference chain and full validation do."""

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from grantline.audit.domain.hash_chain import GENESIS, ChainHead, canonical_bytes, hashed_fields, next_link
from grantline.audit.domain.prepared_entry import PreparedEntry, canonical_datetime, prepare
from grantline.audit.entrypoints.record_decoding import decode_record
from grantline.audit.service.ingest import entry_from_record
from grantline.contract.audit import AuditRecord
from grantline.contract.registry import encode_message

RECEIVED = datetime(2025, 6, 1, 8, 30, 0, 250000, tzinfo=UTC)
DETAILS: list[dict[str, Any]] = [
    {},
    {"fingerprint": "hmac:00ff"},
    {"n": 2, "ok": True, "none": None, "text": 'tab\there \\ "quoted" new\nline'},
    {"float": 2.0, "pi": 3.25, "nested": {"b": [1, 2.5, {"z": "é"}], "a": None}},
    {"unicode": "café ☕ 日本", "emoji": "\U0001f510", "ctrl": "\x01\x1f"},
]


def records() -> list[AuditRecord]:
    rng = random.Random(3)
    out = []
    for i, detail in enumerate(DETAILS * 4):
        optional = {
            name: (f"{name}-{i}" if rng.random() < 0.6 else None)
            for name in ("connection_id", "provider", "user_id", "app_id", "run_id", "tool")
        }
        out.append(
            AuditRecord(
                tenant_id=f"tenant-{i % 3}",
                actor="vault ☕" if i % 5 == 0 else "vault",
                action="token.resolved" if i % 2 else "connection.granted",
                outcome=("success", "failure", "denied")[i % 3],
                occurred_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i, microseconds=i * 7),
                detail=detail,
                **optional,
            )
        )
    return out


def reference_chain(entries: list[Any]) -> list[tuple[int, str, str]]:
    heads: dict[str, ChainHead] = {}
    out = []
    for entry in entries:
        link = next_link(heads.get(entry.tenant_id, GENESIS), entry)
        heads[entry.tenant_id] = ChainHead(link.seq, link.hash)
        out.append(tuple(link))
    return out


def prepared_chain(entries: list[PreparedEntry]) -> list[tuple[int, str, str]]:
    heads: dict[str, ChainHead] = {}
    out = []
    for entry in entries:
        link = entry.link(heads.get(entry.tenant_id, GENESIS))
        heads[entry.tenant_id] = ChainHead(link.seq, link.hash)
        out.append(tuple(link))
    return out


def test_prepared_entries_chain_to_the_same_hashes_as_the_reference() -> None:
    entries = [entry_from_record(record, RECEIVED) for record in records()]
    assert prepared_chain([prepare(entry) for entry in entries]) == reference_chain(entries)


def test_a_published_record_decodes_to_the_entry_full_validation_gives() -> None:
    received_text = canonical_datetime(RECEIVED)
    for record in records():
        decoded = decode_record(encode_message(record), RECEIVED, received_text)
        assert isinstance(decoded, PreparedEntry)
        assert decoded == prepare(entry_from_record(record, RECEIVED))


def test_stored_texts_are_the_canonical_values() -> None:
    record = records()[3]
    entry = entry_from_record(record, RECEIVED)
    decoded = decode_record(encode_message(record), RECEIVED, canonical_datetime(RECEIVED))
    assert isinstance(decoded, PreparedEntry)
    canonical = json.loads(canonical_bytes(hashed_fields(entry, 1)))
    texts = dict(zip(("record_id", "occurred_at", "received_at"), decoded.texts[:3], strict=True))
    assert texts == {name: canonical[name] for name in texts}
    assert json.loads(decoded.texts[-1] or "") == canonical["detail"]


@pytest.mark.parametrize(
    "change",
    [
        # Spellings the fast path leaves to full validation; the result must be the same entry.
        lambda body: body.update(occurred_at="2025-01-01T01:00:00+01:00"),
        lambda body: body.update(occurred_at="2025-01-01T00:00:00Z"),
        lambda body: body.update(id=body["id"].upper()),
        lambda body: body.pop("version"),
        lambda body: body.pop("outcome"),
        lambda body: body.update(unknown_field="ignored"),
    ],
)
def test_unusual_but_valid_spellings_decode_like_full_validation(change: Any) -> None:
    body = json.loads(encode_message(records()[1]))
    change(body)
    data = json.dumps(body).encode()
    expected = prepare(entry_from_record(AuditRecord.model_validate_json(data), RECEIVED))
    assert decode_record(data, RECEIVED, canonical_datetime(RECEIVED)) == expected


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body: body.update(action="Token.Resolved"), "action: string_pattern_mismatch"),
        (lambda body: body.update(action="token.resolved\n"), "action: string_pattern_mismatch"),
        (lambda body: body.update(outcome="sbx_at_SECRET"), "outcome: literal_error"),
        (lambda body: body.update(tenant_id=""), "tenant_id: string_too_short"),
        (lambda body: body.update(actor=7), "actor: string_type"),
        (lambda body: body.update(user_id=12), "user_id: string_type"),
        (lambda body: body.update(id="not-a-uuid"), "id: uuid_parsing"),
        (lambda body: body.update(occurred_at="2025-02-30T00:00:00.000000Z"), "occurred_at: datetime_"),
        (lambda body: body.update(type="connection.granted"), "type: literal_error"),
        (lambda body: body.update(detail=[1]), "detail: dict_type"),
    ],
)
def test_invalid_records_are_rejected_with_the_full_validation_reason(change: Any, reason: str) -> None:
    body = json.loads(encode_message(records()[1]))
    change(body)
    decoded = decode_record(json.dumps(body).encode(), RECEIVED, canonical_datetime(RECEIVED))
    assert isinstance(decoded, str) and decoded.startswith(reason)
    assert "sbx_at_SECRET" not in decoded


def test_values_that_cannot_be_stored_or_hashed_are_rejected() -> None:
    body = json.loads(encode_message(records()[1]))
    received = (RECEIVED, canonical_datetime(RECEIVED))
    assert decode_record(b"not json", *received) == "<root>: json_invalid"
    nul = dict(body, detail={"x": "a\u0000b"})
    assert decode_record(json.dumps(nul).encode(), *received) == "contains a NUL character"
    infinite = json.dumps(dict(body, detail={"x": float("inf")})).encode()
    assert isinstance(decode_record(infinite, *received), str)


def test_canonical_datetime_converts_to_utc_with_microseconds() -> None:
    at = datetime(2025, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    assert canonical_datetime(at) == "2025-01-01T01:00:00.000000Z"
    assert canonical_datetime(at) == json.loads(canonical_bytes({"a": at}))["a"]


def test_prepared_entry_keeps_the_record_id_as_canonical_uuid_text() -> None:
    record = records()[0]
    prepared = prepare(entry_from_record(record, RECEIVED))
    assert prepared.record_id == str(record.id) == str(uuid.UUID(prepared.record_id))
