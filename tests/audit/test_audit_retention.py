"""Retention cuts whole expired prefixes behind signed checkpoints; the rest still verifies."""

from datetime import timedelta

from audit_harness import append_direct, as_superuser, driver_of, entry, ledger_sessions, now
from sqlalchemy import text

from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.domain.verification import BreakReason
from grantline.audit.entrypoints.admin import prune, set_retention
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings


async def _state(engine, tenant: str):  # type: ignore[no-untyped-def]
    keyring = checkpoint_keyring(AuditSettings(environment="test"))
    async with engine.connect() as conn:
        result = await verify_tenant(await driver_of(conn), tenant, keyring)
        rows = await conn.execute(
            text("SELECT seq FROM audit.ledger WHERE tenant_id = :t ORDER BY seq"), {"t": tenant}
        )
        seqs = list(rows.scalars())
    return result, seqs


async def test_retention_cuts_expired_prefixes_and_the_chain_stays_verifiable(database_url: str) -> None:
    settings = AuditSettings(environment="test", database_url=database_url, audit_retention_batch=3)
    t = now()
    async with ledger_sessions(database_url) as (engine, sessions):
        # 5 old records, then 1 recent one, then an old-dated one after it: only the prefix before the
        # recent record may go, so no gap is ever left.
        old = [entry("acme", received_at=t - timedelta(days=400 - i)) for i in range(5)]
        await append_direct(sessions, old)
        await append_direct(sessions, [entry("acme", received_at=t - timedelta(days=1))])
        await append_direct(sessions, [entry("acme", received_at=t - timedelta(days=500))])
        await append_direct(sessions, [entry("globex", received_at=t - timedelta(days=400))])
        await set_retention(settings, "globex", 1000)

        removed = await prune(settings, None, now=t)
        assert removed == {"acme": 5, "globex": 0}
        result, seqs = await _state(engine, "acme")
        assert result.ok and seqs == [6, 7]
        async with engine.connect() as conn:
            checkpoints = (await conn.execute(text("SELECT seq, removed_count FROM audit.checkpoints"))).all()
        # Cut in batches of 3: two checkpoints, the newest where the remaining chain starts.
        assert [tuple(c) for c in checkpoints] == [(3, 3), (5, 2)]

        # New records keep chaining; a later cut keeps it verifiable; nothing left to cut cuts nothing.
        await append_direct(sessions, [entry("acme", received_at=t + timedelta(days=10))])
        assert await prune(settings, "acme", now=t + timedelta(days=366)) == {"acme": 2}
        assert await prune(settings, "acme", now=t + timedelta(days=366)) == {"acme": 0}
        result, seqs = await _state(engine, "acme")
        assert result.ok and seqs == [8]
        assert (await _state(engine, "globex"))[0].ok


async def test_a_forged_checkpoint_or_a_deletion_past_it_is_detected(database_url: str) -> None:
    settings = AuditSettings(environment="test", database_url=database_url)
    t = now()
    async with ledger_sessions(database_url) as (engine, sessions):
        await append_direct(sessions, [entry("acme", received_at=t - timedelta(days=400)) for _ in range(3)])
        await append_direct(sessions, [entry("acme") for _ in range(3)])
        assert await prune(settings, "acme", now=t) == {"acme": 3}
        async with engine.begin() as conn:
            # A superuser deletes the first record after the cut, and forges a checkpoint to hide it.
            await as_superuser(conn, "DELETE FROM audit.ledger WHERE tenant_id = 'acme' AND seq = 4")
        result, _ = await _state(engine, "acme")
        assert result.first_broken is not None
        assert (result.first_broken.seq, result.first_broken.reason) == (5, BreakReason.CHECKPOINT_MISMATCH)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit.checkpoints (tenant_id, seq, hash, removed_count, created_at, key_id,"
                    " signature) SELECT 'acme', 4, prev_hash, 1, now(), 'dev-1', repeat('0', 64)"
                    " FROM audit.ledger WHERE tenant_id = 'acme' AND seq = 5"
                )
            )
        result, _ = await _state(engine, "acme")
        assert result.first_broken is not None
        assert result.first_broken.reason == BreakReason.CHECKPOINT_SIGNATURE
