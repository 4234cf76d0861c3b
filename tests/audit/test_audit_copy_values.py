"""Values COPY must escape (tabs, newlines, backslashes, quotes, unicode) are stored as given and verify."""

from audit_harness import append_direct, driver_of, entry, ledger_sessions

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.domain.hash_chain import hashed_fields
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings

AWKWARD = 'tab\there, new\nline, cr\r, back\\slash, \\N, \\., quote " and café ☕'


async def test_values_copy_must_escape_are_stored_unchanged_and_the_chain_verifies(database_url: str) -> None:
    async with ledger_sessions(database_url) as (engine, sessions):
        entries = [
            entry("acme", actor=AWKWARD, run_id=AWKWARD, detail={"note": AWKWARD, "nested": [AWKWARD, 1.5]}),
            entry("acme", detail={"plain": "value"}),
        ]
        await append_direct(sessions, entries)
        async with engine.connect() as conn:
            driver = await driver_of(conn)
            stored = [record async for record in repo.stream_records(driver, "acme")]
            result = await verify_tenant(
                driver, "acme", checkpoint_keyring(AuditSettings(environment="test"))
            )
    assert result.ok and result.checked == 2
    for original, record in zip(entries, stored, strict=True):
        assert hashed_fields(record, 0) == hashed_fields(original, 0)
