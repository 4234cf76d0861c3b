"""Operator entrypoints (the ``grantline audit`` commands): verify, export, prune, per-tenant retention.

Run by the CLI only, never imported by the service (app.py): it keeps its own SQLAlchemy engine, and
hands the ledger code (written on psycopg) the psycopg connection under each of the engine's.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.domain.filters import AuditQuery
from grantline.audit.domain.verification import VerificationResult
from grantline.audit.entrypoints.retention_task import prune_all, prune_tenant
from grantline.audit.service.query import as_contract
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings
from grantline.contract.audit import StoredAuditRecord
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.db.engine import create_engine

EXPORT_PAGE = 1000


async def _driver(conn: AsyncConnection) -> DriverConnection:
    """The psycopg connection under `conn`, in `conn`'s transaction."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


class _EngineConnections:
    """Retention's ``LedgerConnections`` on the CLI's engine (no outbox relay here to wake)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def driver_transaction(self, *, wake_relay: bool = True) -> AsyncIterator[DriverConnection]:
        """A connection in a transaction that commits when the block ends, rolls back if it raises."""
        async with self.engine.begin() as conn:
            yield await _driver(conn)

    # A write of one statement commits here too (a connection outside begin() would roll it back).
    single_statement = driver_transaction


@asynccontextmanager
async def _database(settings: AuditSettings) -> AsyncIterator[_EngineConnections]:
    engine = create_engine(settings.database_url, pool_size=2, application_name="audit-cli")
    try:
        yield _EngineConnections(engine)
    finally:
        await engine.dispose()


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
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                result = await verify_tenant(await _driver(conn), tenant, keyring)
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
