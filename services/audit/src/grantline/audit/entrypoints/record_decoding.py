"""AUDIT stream message bodies into prepared ledger entries, or the reason they are not records.

Full pydantic validation plus a model per record cost more than everything else ingest does. Records
as services publish them (pydantic's own JSON: lower-case UUID, UTC "...Z" timestamps with microseconds,
plain strings) take a fast path of `json.loads` and the same checks `AuditRecord` makes. Anything the
fast path is not certain about, valid or not, goes through `AuditRecord` itself, so what is accepted,
what is stored and the reason given for a rejection are exactly what full validation gives.
"""

import functools
import json
import re
from datetime import datetime

from pydantic import ValidationError
from pydantic_core import from_json

from grantline.audit.domain.hash_chain import canonical_bytes
from grantline.audit.domain.prepared_entry import (
    TEXT_FIELDS,
    PreparedEntry,
    is_canonical_datetime,
    prepare,
    prepare_fields,
)
from grantline.audit.service.ingest import entry_from_record
from grantline.contract.audit import ACTION_PATTERN, AuditRecord
from grantline.runtime.nats.consuming import validation_summary

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# fullmatch, and without the anchors: Python's "$" would also accept a trailing newline.
_ACTION = re.compile(ACTION_PATTERN.removeprefix("^").removesuffix("$"))
_OPTIONAL_TEXT = ("connection_id", "provider", "app_id", "run_id", "tool", "user_id")
assert TEXT_FIELDS[5:11] == _OPTIONAL_TEXT, "texts below are built in TEXT_FIELDS order"
_OUTCOMES = frozenset({"success", "failure", "denied"})
# Exact types whose canonical JSON json.dumps writes unchanged (no float: 2.0 is written as 2).
_PLAIN_DETAIL_VALUES = frozenset({str, int, bool, type(None)})
# canonical_bytes' JSON settings, built once (json.dumps with arguments builds an encoder per call).
_PLAIN_DETAIL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_record(data: bytes, received_at: datetime, received_text: str) -> PreparedEntry | str:
    """The entry `data` carries, or why it is not one (field names and error kinds, never values).

    `received_text` is `received_at` in canonical spelling (computed once per batch).
    """
    # Postgres text and jsonb cannot hold NUL; such a record would fail every insert forever.
    if b"\\u0000" in data:
        return "contains a NUL character"
    fast = _decode_plain(data, received_text)
    if fast is not None:
        return fast
    return _decode_validated(data, received_at)


def _decode_plain(data: bytes, received_text: str) -> PreparedEntry | None:
    """The entry for a record in the form services publish; None when full validation must decide."""
    try:
        # pydantic's own JSON parser (what full validation reads with), keys interned: faster than json.
        body = from_json(data, cache_strings="keys")
    except ValueError:
        return None
    if type(body) is not dict or body.get("type") != "audit.record" or type(body.get("version")) is not int:
        return None
    record_id, occurred_at = body.get("id"), body.get("occurred_at")
    tenant_id, actor, action = body.get("tenant_id"), body.get("actor"), body.get("action")
    outcome, detail = body.get("outcome", "success"), body.get("detail", {})
    if not (
        type(record_id) is str
        and _UUID.fullmatch(record_id)
        and type(occurred_at) is str
        and is_canonical_datetime(occurred_at)
        and _is_datetime(occurred_at)
        and type(tenant_id) is str
        and 1 <= len(tenant_id) <= 128
        and type(actor) is str
        and 1 <= len(actor) <= 200
        and type(action) is str
        and len(action) <= 100
        and _is_action(action)
        and type(outcome) is str
        and outcome in _OUTCOMES
        and type(detail) is dict
    ):
        return None
    optional = [body.get(name) for name in _OPTIONAL_TEXT]
    if any(value is not None and type(value) is not str for value in optional):
        return None
    if all(type(value) in _PLAIN_DETAIL_VALUES for value in detail.values()):
        detail_text = _PLAIN_DETAIL_ENCODER.encode(detail)
    else:
        try:
            detail_text = canonical_bytes(detail).decode("utf-8")
        except (TypeError, ValueError):
            return None
    # In TEXT_FIELDS order: record_id, occurred_at, received_at, action, actor, the optional ids,
    # outcome, detail.
    texts = [record_id, occurred_at, received_text, action, actor, *optional, outcome, detail_text]
    try:
        return prepare_fields(tenant_id, texts)
    except UnicodeEncodeError:
        return None


@functools.lru_cache(maxsize=1024)
def _is_action(action: str) -> bool:
    # Services use a few dozen actions: remembered instead of matched again for every record.
    return _ACTION.fullmatch(action) is not None


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _decode_validated(data: bytes, received_at: datetime) -> PreparedEntry | str:
    try:
        record = AuditRecord.model_validate_json(data)
        return prepare(entry_from_record(record, received_at))
    except ValidationError as error:
        return validation_summary(error)
    except UnicodeEncodeError as error:
        return f"not valid Unicode: {type(error).__name__}"
    except (TypeError, ValueError) as error:
        return f"detail cannot be hashed: {type(error).__name__}"
