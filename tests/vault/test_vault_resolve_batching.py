"""The resolve hot path's batching: each request in a batch gets its own answer and its own audit record."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from fixtures.waiting import wait_for_async
from vault_harness import TENANT, VaultHarness

from grantline.contract import vault as contract
from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import decode_event, encode_message
from grantline.runtime.db.urls import libpq_url
from grantline.vault.adapters.audit_buffer import resolve_record_json
from grantline.vault.adapters.resolve_reader import ResolveReader


def test_hand_built_audit_json_is_what_the_model_would_encode() -> None:
    event_id = uuid.uuid4()
    for occurred_at in (datetime.now(UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)):
        for item in (
            ("tenant-a", "conn-1", "sandbox", "alice", "app", "run", "tool", "success", {}, occurred_at),
            (
                "t",
                None,
                "zoë",
                'bob "q"\n',
                None,
                None,
                None,
                "denied",
                {"error": "not_connected"},
                occurred_at,
            ),
        ):
            built = resolve_record_json(event_id, item)
            tenant, connection, provider, user, app, run, tool, outcome, detail, at = item
            model = AuditRecord(
                id=event_id,
                tenant_id=tenant,
                actor=f"user:{user}",
                action=AuditAction.TOKEN_RESOLVED,
                connection_id=connection,
                provider=provider,
                user_id=user,
                app_id=app,
                run_id=run,
                tool=tool,
                outcome=outcome,  # type: ignore[arg-type]
                detail=detail,
                occurred_at=at,
            )
            assert decode_event(built) == model
            assert built == encode_message(model)


async def test_a_batch_answers_each_request_with_its_own_result(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    await vault.put_app("sandbox", tenant="tenant-b")
    alice = await vault.connect("sandbox", user="alice", scopes=["read"])
    bob = await vault.connect("sandbox", user="bob", scopes=["read", "write"])
    alice_b = await vault.connect("sandbox", user="alice", tenant="tenant-b", scopes=["read"])
    tokens = {
        alice.connection_id: await vault.token(user="alice"),
        bob.connection_id: await vault.token(user="bob"),
        alice_b.connection_id: await vault.token(user="alice", tenant="tenant-b"),
    }
    assert len(set(tokens.values())) == 3

    expected: list[str] = []  # a connection id, or an error code
    calls = []
    for round_ in range(8):
        cases = [
            (dict(user="alice"), alice.connection_id),
            (dict(user="bob", scopes=["write"]), bob.connection_id),
            (dict(user="alice", scopes=["write"]), ErrorCode.MISSING_SCOPES.value),
            (dict(user="carol"), ErrorCode.NOT_CONNECTED.value),
            (dict(user="alice", tenant="tenant-b"), alice_b.connection_id),
            (dict(user="bob", tenant="tenant-b"), ErrorCode.NOT_CONNECTED.value),
        ]
        for kwargs, outcome in cases[round_ % 2 :] + cases[: round_ % 2]:
            calls.append(vault.resolve("sandbox", **kwargs))  # type: ignore[arg-type]
            expected.append(outcome)
    raw = vault.runtime.nats.request(f"{contract.SUBJECT_RESOLVE}.{TENANT}", b'{"grant": "x"', timeout=5)
    too_long = vault.runtime.nats.request(
        f"{contract.SUBJECT_RESOLVE}.{TENANT}",
        json.dumps({"grant": "x", "provider": "s" * 300}).encode(),
        timeout=5,
    )
    replies = await asyncio.gather(*calls, raw, too_long)

    for reply, outcome in zip(replies[:-2], expected, strict=True):
        if isinstance(reply, ErrorReply):
            assert reply.error.code == outcome
        else:
            assert reply.connection_id == outcome
            assert reply.access_token.get_secret_value() == tokens[outcome]
    for message in replies[-2:]:
        assert ErrorReply.model_validate_json(message.data).error.code == ErrorCode.INVALID_REQUEST

    # One audit record per resolve that was understood (not for the two malformed requests).
    audit_records = vault.resolve_records

    async def all_published() -> bool:
        return len(await audit_records()) >= len(expected) + len(tokens)

    await wait_for_async(all_published, timeout=10)
    records = (await audit_records())[len(tokens) :]
    assert len(records) == len(expected)
    assert sorted(r.outcome for r in records) == sorted(
        "denied" if outcome in {c.value for c in ErrorCode} else "success" for outcome in expected
    )
    used = await vault.sql(
        "SELECT id FROM vault.connections WHERE last_used_at IS NOT NULL ORDER BY id",
    )
    assert {row[0] for row in used} == set(tokens)


async def test_reader_batch_returns_each_key_its_own_rows(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    alice = await vault.connect("sandbox", user="alice")
    bob = await vault.connect("sandbox", user="bob")
    reader = ResolveReader(libpq_url(vault.runtime.settings.database_url), connections=1, max_batch=256)
    try:
        await vault.sql("INSERT INTO vault.finished_runs (tenant_id, run_id) VALUES (:t, 'done')", t=TENANT)
        keys = [(TENANT, f"user:{user}", "sandbox", "run-1") for user in ("alice", "bob", "carol")] * 20
        keys += [("tenant-z", "user:alice", "sandbox", "run-1")] * 5
        keys += [(TENANT, "user:alice", "sandbox", "done"), ("tenant-z", "user:bob", "sandbox", "done")]
        results = await asyncio.gather(*(reader.lookup(*key) for key in keys))
        alone = await reader.lookup(TENANT, "user:bob", "sandbox", "done")
    finally:
        await reader.close()
    want = {"user:alice": [alice.connection_id], "user:bob": [bob.connection_id], "user:carol": []}
    for (tenant, owner, _, run), found in zip(keys, results, strict=True):
        assert [row.id for row in found.candidates] == (want[owner] if tenant == TENANT else [])
        assert found.run_finished == (tenant == TENANT and run == "done")
    assert alone.run_finished and [row.id for row in alone.candidates] == [bob.connection_id]
