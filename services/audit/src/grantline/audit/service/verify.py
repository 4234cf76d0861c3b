"""Verifying a tenant's stored chain from its latest checkpoint to its recorded head, streaming."""

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.domain.checkpoint import CheckpointKeyring, verify_ledger
from grantline.audit.domain.verification import ChainVerifier, VerificationResult
from grantline.runtime.db.driver import DriverConnection


async def verify_tenant(
    conn: DriverConnection, tenant_id: str, keys: CheckpointKeyring
) -> VerificationResult:
    """Check every remaining record of `tenant_id` (constant memory) and that it reaches its recorded head."""
    checkpoint = await repo.latest_checkpoint(conn, tenant_id)
    end = await repo.chain_head(conn, tenant_id)
    if checkpoint is not None:
        # The checkpoint's own checks (signature, tenant) on no records; the records are streamed below.
        preflight = verify_ledger([], tenant_id=tenant_id, checkpoint=checkpoint, keys=keys)
        if not preflight.ok:
            return preflight
    verifier = ChainVerifier(start=checkpoint.head if checkpoint else None, tenant_id=tenant_id)
    async for record in repo.stream_records(conn, tenant_id):
        if verifier.feed(record) is not None:
            break
    return verifier.finish(end)
