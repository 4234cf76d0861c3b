"""A canary token issued by the sandbox appears in no log line, event, span, error or database column."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from vault_harness import TENANT, VaultHarness

from grantline.contract import vault as contract
from grantline.contract.errors import ErrorReply
from grantline.runtime.telemetry.span_export import recording_provider
from grantline.sandbox import Fault

CANARY = "CANARYq7z"


async def _stream_payloads(vault: VaultHarness) -> list[bytes]:
    js = vault.runtime.nats.jetstream()
    payloads = []
    for stream in ("CONNECTIONS", "AUDIT"):
        info = await js.stream_info(stream)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            payloads.append(bytes(message.data or b"") + repr(message.headers).encode())
    return payloads


async def _database_values(vault: VaultHarness) -> list[bytes]:
    """Every text, bytea, JSON and array value of every vault table, as bytes."""
    columns = await vault.sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'vault' "
        "AND data_type IN ('text', 'character varying', 'bytea', 'jsonb', 'ARRAY')"
    )
    values = []
    for table, column, data_type in columns:
        cast = "" if data_type == "bytea" else "::text"
        for (value,) in await vault.sql(f'SELECT "{column}"{cast} FROM vault."{table}"'):
            values.append(bytes(value) if isinstance(value, bytes | memoryview) else (value or "").encode())
    return values


async def test_canary_token_never_leaks(vault: VaultHarness, caplog: pytest.LogCaptureFixture) -> None:
    spans = InMemorySpanExporter()
    recording_provider("vault-test").add_span_processor(SimpleSpanProcessor(spans))  # raw, not redacted
    caplog.set_level(logging.DEBUG)
    vault.sandbox.state.canary = CANARY
    await vault.put_app("sandbox_rotating")
    info = await vault.connect("sandbox_rotating", scopes=["read"])
    token = await vault.token("sandbox_rotating")
    assert CANARY in token  # the sandbox really issued canary tokens
    await vault.expire(info.connection_id)
    assert CANARY in await vault.token("sandbox_rotating")
    errors = [await vault.resolve("sandbox_rotating", scopes=["write"])]
    vault.sandbox.state.add_fault(Fault(endpoint="token", status=503, times=2))
    await vault.expire(info.connection_id)
    errors.append(await vault.resolve("sandbox_rotating"))
    await vault.call(
        contract.SUBJECT_REVOKE,
        contract.RevokeRequest(tenant_id=TENANT, connection_id=info.connection_id),
        contract.OkReply,
    )
    errors.append(await vault.resolve("sandbox_rotating"))
    assert all(isinstance(error, ErrorReply) for error in errors)
    await _wait_outbox_empty(vault)

    assert not [r for r in caplog.records if CANARY in r.getMessage() or CANARY in repr(r.__dict__)]
    assert not [e for e in errors if CANARY in e.model_dump_json()]
    assert not [s for s in spans.get_finished_spans() if CANARY in s.to_json()]
    payloads = await _stream_payloads(vault)
    assert payloads and not [p for p in payloads if CANARY.encode() in p]
    values = await _database_values(vault)
    assert values and not [v for v in values if CANARY.encode() in v]


async def _wait_outbox_empty(vault: VaultHarness) -> None:
    from fixtures.waiting import wait_for_async

    async def empty() -> bool:
        [(count,)] = await vault.sql("SELECT count(*) FROM vault.outbox")
        return count == 0

    await wait_for_async(empty, timeout=10)
