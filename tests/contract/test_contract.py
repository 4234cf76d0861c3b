"""The contract models: envelope, union keyed on type, and the checked-in AsyncAPI document."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from grantline.contract import (
    EVENT_TYPES,
    AuditRecord,
    ConnectionGranted,
    ErrorCode,
    ErrorReply,
    RunRequested,
    decode_event,
    encode_message,
)
from grantline.contract.asyncapi import render
from grantline.contract.vault import ResolveReply, ResolveRequest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_event_round_trips_through_the_union() -> None:
    for type_name, model in EVENT_TYPES.items():
        assert model.model_fields["type"].default == type_name
    event = ConnectionGranted(tenant_id="t1", connection_id="c1", owner="workspace", provider="slack")
    decoded = decode_event(encode_message(event))
    assert decoded == event and isinstance(decoded, ConnectionGranted)


def test_events_are_frozen_and_carry_the_envelope() -> None:
    event = RunRequested(tenant_id="t1", run_id="r1", user_id="u1", app_id="a1", requirements=["github"])
    assert {"id", "type", "version", "occurred_at", "tenant_id"} <= set(event.model_dump())
    with pytest.raises(ValidationError):
        event.run_id = "other"  # type: ignore[misc]


def test_naive_timestamps_and_bad_owners_are_refused() -> None:
    with pytest.raises(ValidationError):
        decode_event(
            b'{"type":"runs.finished","tenant_id":"t","run_id":"r","occurred_at":"2026-01-01T00:00:00"}'
        )
    with pytest.raises(ValidationError):
        ConnectionGranted(tenant_id="t", connection_id="c", owner="nobody", provider="x")


def test_audit_subject_follows_the_action() -> None:
    record = AuditRecord(tenant_id="t", actor="vault", action="token.resolved", run_id="r1")
    assert record.subject() == "audit.token.resolved"
    with pytest.raises(ValidationError):
        AuditRecord(tenant_id="t", actor="vault", action="Token Resolved!")


def test_an_unvalidated_audit_action_never_becomes_a_subject() -> None:
    # model_construct skips validation; a wildcard must not reach a NATS subject that way either.
    forged = AuditRecord.model_construct(tenant_id="t", actor="vault", action="token.>")
    with pytest.raises(ValueError, match="cannot name a subject"):
        forged.subject()


def test_error_replies_have_the_documented_shape() -> None:
    reply = ErrorReply.of(ErrorCode.NOT_CONNECTED, "user u1 has no google connection")
    assert reply.model_dump(mode="json") == {
        "error": {"code": "not_connected", "message": "user u1 has no google connection"}
    }


def test_only_the_resolve_reply_holds_a_token_and_it_does_not_print() -> None:
    reply = ResolveReply(access_token="sbx_at_secret", expires_at=None, scopes=[], connection_id="c1")
    assert "sbx_at_secret" not in repr(reply) and "sbx_at_secret" not in str(reply)
    with pytest.raises(ValidationError):
        ResolveRequest(tenant_id="t", user_id="u")  # neither provider nor app


def test_checked_in_asyncapi_document_is_current() -> None:
    assert (DOCS / "asyncapi.json").read_text() == render(), (
        "run `make asyncapi` to regenerate docs/asyncapi.json"
    )
