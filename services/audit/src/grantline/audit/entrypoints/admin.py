"""Operator entrypoints (the ``grantline audit`` commands): verify, export, prune, per-tenant retention.

Run by the CLI only, never imported by the service (app.py): it opens its own psycopg pool (the
runtime's ``DriverPool``), the connections the ledger code is written on.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.domain.filters import AuditQuery
from grantline.audit.domain.verification import VerificationResult
from grantline.audit.entrypoints.retention_task import prune_all, prune_tenant
from grantline.audit.service.query import as_contract
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings
from grantline.contract.audit import StoredAuditRecord
from grantline.runtime.db import driver
from grantline.runtime.db.driver import DriverConnection, DriverPool

EXPORT_PAGE = 1000


class _CliConnections:
    """Retention's ``LedgerConnections`` on the CLI's own pool (no outbox relay here to wake)."""

    def __init__(self, pool: DriverPool) -> None:
        self._pool = pool

    def driver_transaction(self, *, wake_relay: bool = True) -> AbstractAsyncContextManager[DriverConnection]:
        """A connection in a transaction that commits when the block ends, rolls back if it raises."""
        return self._pool.transaction()

    def single_statement(self, *, wake_relay: bool = True) -> AbstractAsyncContextManager[DriverConnection]:
        """A connection in autocommit mode: each statement is its own transaction."""
        return self._pool.single_statements()


@asynccontextmanager
async def _database(settings: AuditSettings) -> AsyncIterator[_CliConnections]:
    pool = DriverPool(settings.database_url, max_size=2, application_name="audit-cli")
    try:
        yield _CliConnections(pool)
    finally:
        await pool.close()


async def verify_tenants(
    settings: AuditSettings,
    tenant_id: str | None,
    on_result: Callable[[str, VerificationResult], None],
) -> bool:
    """Verify one tenant's chain (or every tenant's); report each result; True when all are intact."""
    keyring = checkpoint_keyring(settings)
    intact = True
    async with _database(settings) as db:
        async with db.single_statement() as conn:
            tenant_ids = [tenant_id] if tenant_id else await repo.tenants(conn)
        for tenant in tenant_ids:
            # One connection (and read snapshot) per tenant: a chain is checked against one moment.
            conn = await driver.connect(settings.database_url, application_name="audit-cli")
            try:
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                result = await verify_tenant(conn, tenant, keyring)
            finally:
                await conn.close()  # read only: closing rolls the snapshot's transaction back
            on_result(tenant, result)
            intact = intact and result.ok
    return intact


async def export_records(
    settings: AuditSettings, query: AuditQuery | None, *, all_tenants_filters: dict[str, object] | None = None
) -> AsyncIterator[StoredAuditRecord]:
    """Every record matching `query` (newest first), or with no query every record of every tenant."""
    async with _database(settings) as db:
        if query is not None:
            queries = [query]
        else:
            filters = all_tenants_filters or {}
            async with db.single_statement() as conn:
                tenant_ids = await repo.tenants(conn)
            queries = [AuditQuery.model_validate({**filters, "tenant_id": t}) for t in tenant_ids]
        for each in queries:
            page_query = each.model_copy(update={"limit": EXPORT_PAGE})
            before_seq: int | None = None
            while True:
                async with db.single_statement() as conn:
                    rows = await repo.query_page(conn, page_query, before_seq=before_seq)
                for row in rows[:EXPORT_PAGE]:
                    yield as_contract(row)
                if len(rows) <= EXPORT_PAGE:
                    break
                before_seq = rows[EXPORT_PAGE - 1].seq


async def prune(
    settings: AuditSettings, tenant_id: str | None, now: datetime | None = None
) -> dict[str, int]:
    """Run retention now (for one tenant or all): records removed per tenant."""
    keyring = checkpoint_keyring(settings)
    async with _database(settings) as db:
        if tenant_id is None:
            return await prune_all(
                db,
                keyring=keyring,
                default_days=settings.audit_retention_days,
                batch=settings.audit_retention_batch,
                now=now,
            )
        removed = await prune_tenant(
            db,
            tenant_id,
            keyring=keyring,
            default_days=settings.audit_retention_days,
            batch=settings.audit_retention_batch,
            now=now,
        )
        return {tenant_id: removed}


async def set_retention(settings: AuditSettings, tenant_id: str, days: int | None) -> None:
    """Give a tenant its own retention (None: back to the default)."""
    async with _database(settings) as db, db.driver_transaction() as conn:
        await repo.set_retention_days(conn, tenant_id, days, datetime.now(UTC))
