"""Pagination cursors, and the query filters they travel with."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import SecretBytes, ValidationError

from grantline.audit.domain.cursor import (
    MAX_CURSOR_CHARS,
    Cursor,
    CursorError,
    decode_cursor,
    encode_cursor,
)
from grantline.audit.domain.filters import KNOWN_ACTIONS, AuditQuery, action_matches

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
WHEN = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


# --- cursors ---------------------------------------------------------------------------------------


def test_a_cursor_round_trips() -> None:
    token = encode_cursor("acme", 42, key=KEY)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert decode_cursor(token, tenant_id="acme", key=KEY) == Cursor("acme", 42, None)


def test_a_time_cursor_round_trips_in_utc() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=-5)))
    token = encode_cursor("acme", 7, key=SecretBytes(KEY), occurred_at=local)
    cursor = decode_cursor(token, tenant_id="acme", key=KEY)
    assert cursor == Cursor("acme", 7, WHEN)
    assert cursor.occurred_at is not None and cursor.occurred_at.utcoffset() == timedelta(0)


def test_a_cursor_does_not_show_its_key() -> None:
    assert "kkkk" not in encode_cursor("acme", 1, key=KEY)


def test_any_changed_character_is_refused() -> None:
    token = encode_cursor("acme", 42, key=KEY, occurred_at=WHEN)
    for i, char in enumerate(token):
        if char == ".":
            continue
        for replacement in {"A", "B", "_", "-"} - {char}:
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(CursorError):
                decode_cursor(tampered, tenant_id="acme", key=KEY)


def test_a_cursor_with_a_rewritten_payload_is_refused() -> None:
    token = encode_cursor("acme", 42, key=KEY)
    forged_payload = encode_cursor("acme", 9_999, key=OTHER_KEY).split(".")[0]
    with pytest.raises(CursorError, match="tampered"):
        decode_cursor(f"{forged_payload}.{token.split('.')[1]}", tenant_id="acme", key=KEY)


def test_another_tenants_cursor_is_refused_without_naming_it() -> None:
    token = encode_cursor("globex", 42, key=KEY)
    with pytest.raises(CursorError) as raised:
        decode_cursor(token, tenant_id="acme", key=KEY)
    assert "globex" not in str(raised.value)


def test_a_cursor_from_another_key_is_refused() -> None:
    with pytest.raises(CursorError):
        decode_cursor(encode_cursor("acme", 1, key=OTHER_KEY), tenant_id="acme", key=KEY)


@pytest.mark.parametrize(
    "garbage",
    ["", ".", "abc", "a.b.c", "!!!.???", "e30.", ".e30", "a" * (MAX_CURSOR_CHARS + 1), "é.é"],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(garbage, tenant_id="acme", key=KEY)


def test_weak_keys_and_negative_positions_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_cursor("acme", 1, key=b"short")
    with pytest.raises(ValueError):
        encode_cursor("acme", -1, key=KEY)
    with pytest.raises(ValueError):
        encode_cursor("acme", 1, key=KEY, occurred_at=datetime(2025, 1, 1))


# --- query filters ---------------------------------------------------------------------------------


def test_a_query_has_sensible_defaults() -> None:
    query = AuditQuery(tenant_id="acme")
    assert query.limit == 100
    assert query.action is None and query.action_prefix is None


def test_a_query_is_frozen() -> None:
    query = AuditQuery(tenant_id="acme")
    with pytest.raises(ValidationError):
        query.limit = 5  # type: ignore[misc]


@pytest.mark.parametrize("limit", [0, 501, -1])
def test_limit_is_bounded(limit: int) -> None:
    with pytest.raises(ValidationError):
        AuditQuery(tenant_id="acme", limit=limit)


@pytest.mark.parametrize("field", ["tenant_id", "user_id", "connection_id", "provider", "app_id", "run_id"])
@pytest.mark.parametrize("value", ["", "   "])
def test_ids_must_not_be_blank(field: str, value: str) -> None:
    values = {"tenant_id": "acme", field: value}
    with pytest.raises(ValidationError):
        AuditQuery.model_validate(values)


def test_time_range_must_be_in_order_and_aware() -> None:
    AuditQuery(tenant_id="acme", since=WHEN, until=WHEN)
    with pytest.raises(ValidationError):
        AuditQuery(tenant_id="acme", since=WHEN, until=WHEN - timedelta(seconds=1))
    with pytest.raises(ValidationError):
        AuditQuery(tenant_id="acme", since=datetime(2025, 1, 1))


def test_times_are_held_in_utc() -> None:
    query = AuditQuery(tenant_id="acme", since=WHEN.astimezone(timezone(timedelta(hours=2))))
    assert query.since == WHEN and query.since.utcoffset() == timedelta(0)


@pytest.mark.parametrize("action", [*sorted(KNOWN_ACTIONS), "connection.*", "*", "custom.thing"])
def test_actions_and_families_are_accepted(action: str) -> None:
    assert AuditQuery(tenant_id="acme", action=action).action == action


@pytest.mark.parametrize(
    "action", ["", "Connection.granted", "connection.", "connection..granted", "a.*.b", "%"]
)
def test_malformed_actions_are_refused(action: str) -> None:
    with pytest.raises(ValidationError):
        AuditQuery(tenant_id="acme", action=action)


def test_action_families_match_by_prefix() -> None:
    assert AuditQuery(tenant_id="acme", action="token.*").action_prefix == "token."
    assert AuditQuery(tenant_id="acme", action="*").action_prefix == ""
    assert action_matches("token.*", "token.resolved")
    assert not action_matches("token.*", "tokens.resolved")
    assert action_matches("*", "key.rotated")
    assert action_matches("key.rotated", "key.rotated")
    assert not action_matches("key.rotated", "key.rotated_again")


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        AuditQuery.model_validate({"tenant_id": "acme", "order": "oldest"})


def test_a_query_request_from_the_bus_becomes_a_query() -> None:
    from grantline.contract.audit import AuditQueryRequest

    request = AuditQueryRequest(tenant_id="acme", run_id="run-1", action="token.resolved", limit=50)
    query = AuditQuery.model_validate(request.model_dump())
    assert (query.tenant_id, query.run_id, query.action, query.limit) == (
        "acme",
        "run-1",
        "token.resolved",
        50,
    )
