"""The ledger is append-only, and any edit or deletion that bypasses the guard makes verify name it."""

import pytest
from audit_harness import append_direct, as_superuser, driver_of, entry, ledger_sessions
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.domain.verification import BreakReason, VerificationResult
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings
from grantline.cli.main import app as cli


@pytest.fixture
async def chained(database_url: str):  # type: ignore[no-untyped-def]
    async with ledger_sessions(database_url) as (engine, sessions):
        entries = [entry("acme", detail={"i": i}) for i in range(5)]
        await append_direct(sessions, entries)
        await append_direct(sessions, [entry("globex")])
        yield engine, entries


async def _verify(engine, tenant: str = "acme") -> VerificationResult:  # type: ignore[no-untyped-def]
    keyring = checkpoint_keyring(AuditSettings(environment="test"))
    async with engine.connect() as conn:
        return await verify_tenant(await driver_of(conn), tenant, keyring)


async def test_an_intact_ledger_verifies(chained) -> None:  # type: ignore[no-untyped-def]
    engine, _ = chained
    result = await _verify(engine)
    assert result.ok and result.checked == 5 and result.head.seq == 5


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.ledger SET actor = 'someone-else' WHERE seq = 2",
        "DELETE FROM audit.ledger WHERE tenant_id = 'acme' AND seq = 5",
        "UPDATE audit.checkpoints SET seq = 1",
    ],
)
async def test_the_database_refuses_edits_and_unchecked_deletes(chained, statement: str) -> None:  # type: ignore[no-untyped-def]
    engine, _ = chained
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert (await _verify(engine)).ok


async def test_an_edited_record_is_named(chained) -> None:  # type: ignore[no-untyped-def]
    engine, entries = chained
    async with engine.begin() as conn:
        await as_superuser(
            conn, "UPDATE audit.ledger SET actor = 'mallory' WHERE tenant_id = 'acme' AND seq = 3"
        )
    result = await _verify(engine)
    assert not result.ok and result.first_broken is not None
    assert result.first_broken.seq == 3
    assert result.first_broken.record_id == entries[2].record_id
    assert result.first_broken.reason == BreakReason.HASH_MISMATCH
    assert (await _verify(engine, "globex")).ok


async def test_a_deleted_record_is_named(chained) -> None:  # type: ignore[no-untyped-def]
    engine, entries = chained
    async with engine.begin() as conn:
        await as_superuser(conn, "DELETE FROM audit.ledger WHERE tenant_id = 'acme' AND seq = 2")
    result = await _verify(engine)
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (3, BreakReason.SEQ_GAP)
    assert result.first_broken.record_id == entries[2].record_id


async def test_deleting_the_newest_record_is_detected_by_the_chain_head(chained) -> None:  # type: ignore[no-untyped-def]
    engine, _ = chained
    async with engine.begin() as conn:
        await as_superuser(conn, "DELETE FROM audit.ledger WHERE tenant_id = 'acme' AND seq = 5")
    result = await _verify(engine)
    assert result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (5, BreakReason.HEAD_MISMATCH)


def test_the_cli_names_the_first_broken_record_and_exits_1(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    async def tamper() -> str:
        async with ledger_sessions(database_url) as (engine, sessions):
            entries = [entry("acme") for _ in range(3)]
            await append_direct(sessions, entries)
            await append_direct(sessions, [entry("globex")])
            async with engine.begin() as conn:
                await as_superuser(
                    conn, "UPDATE audit.ledger SET detail = '{\"x\": 1}' WHERE seq = 2 AND tenant_id = 'acme'"
                )
            return str(entries[1].record_id)

    record_id = asyncio.run(tamper())
    monkeypatch.setenv("GRANTLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("GRANTLINE_ENVIRONMENT", "test")
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"BROKEN  acme: seq 2 (record {record_id}): hash_mismatch" in result.output
    assert "ok      globex: 1 records" in result.output
    assert runner.invoke(cli, ["audit", "verify", "globex"]).exit_code == 0
