"""Operator entrypoints (the ``grantline audit`` commands): verify, export, prune, per-tenant retention."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.domain.filters import AuditQuery
from grantline.audit.domain.verification import VerificationResult
from grantline.audit.entrypoints.retention_task import prune_all, prune_tenant
from grantline.audit.service.query import as_contract
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings
from grantline.contract.audit import StoredAuditRecord
from grantline.runtime.db.engine import create_engine, session_factory

EXPORT_PAGE = 1000


@asynccontextmanager
async def _database(
    settings: AuditSettings,
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    engine = create_engine(settings.database_url, pool_size=2, application_name="audit-cli")
    try:
        yield engine, session_factory(engine)
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
    async with _database(settings) as (engine, _):
        async with engine.connect() as conn:
            tenant_ids = [tenant_id] if tenant_id else await repo.tenants(conn)
        for tenant in tenant_ids:
            # One connection (and read snapshot) per tenant: a chain is checked against one moment.
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                result = await verify_tenant(conn, tenant, keyring)
            on_result(tenant, result)
            intact = intact and result.ok
    return intact


async def export_records(
    settings: AuditSettings, query: AuditQuery | None, *, all_tenants_filters: dict[str, object] | None = None
) -> AsyncIterator[StoredAuditRecord]:
    """Every record matching `query` (newest first), or with no query every record of every tenant."""
    async with _database(settings) as (_, sessions):
        async with sessions() as session:
            if query is not None:
                queries = [query]
            else:
                filters = all_tenants_filters or {}
                tenant_ids = await repo.tenants(session)
                queries = [AuditQuery.model_validate({**filters, "tenant_id": t}) for t in tenant_ids]
        for each in queries:
            page_query = each.model_copy(update={"limit": EXPORT_PAGE})
            before_seq: int | None = None
            while True:
                async with sessions() as session:
                    rows = await repo.query_page(session, page_query, before_seq=before_seq)
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
    async with _database(settings) as (_, sessions):
        if tenant_id is None:
            return await prune_all(
                sessions,
                keyring=keyring,
                default_days=settings.audit_retention_days,
                batch=settings.audit_retention_batch,
                now=now,
            )
        removed = await prune_tenant(
            sessions,
            tenant_id,
            keyring=keyring,
            default_days=settings.audit_retention_days,
            batch=settings.audit_retention_batch,
            now=now,
        )
        return {tenant_id: removed}


async def set_retention(settings: AuditSettings, tenant_id: str, days: int | None) -> None:
    """Give a tenant its own retention (None: back to the default)."""
    async with _database(settings) as (_, sessions), sessions() as session, session.begin():
        await repo.set_retention_days(session, tenant_id, days, datetime.now(UTC))
