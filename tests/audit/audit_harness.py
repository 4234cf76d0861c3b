"""Running the audit service in-process against the test NATS and Postgres, and reading its ledger."""

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from grantline.audit.adapters.keys import checkpoint_keyring
from grantline.audit.app import create_runtime
from grantline.audit.domain.verification import VerificationResult
from grantline.audit.service.verify import verify_tenant
from grantline.audit.settings import AuditSettings
from grantline.contract import encode_message
from grantline.contract.audit import AuditAction, AuditRecord
from grantline.runtime.db.driver import DriverConnection, driver_connection
from grantline.runtime.service_runtime import ServiceRuntime

EVERY_ACTION = [
    value for name, value in vars(AuditAction).items() if name.isupper() and isinstance(value, str)
]


def audit_settings(nats_url: str, database_url: str, **overrides: Any) -> AuditSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 4,
        "audit_retention_interval_seconds": 0,
    }
    values.update(overrides)
    return AuditSettings(**values)


@asynccontextmanager
async def running_audit(nats_url: str, database_url: str, **overrides: Any) -> AsyncIterator[ServiceRuntime]:
    runtime = create_runtime(audit_settings(nats_url, database_url, **overrides))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def record(tenant_id: str = "acme", action: str = AuditAction.TOKEN_RESOLVED, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {"actor": "vault", "connection_id": "conn-1", "provider": "google"}
    values.update(fields)
    return AuditRecord(tenant_id=tenant_id, action=action, **values)


async def publish(js: JetStreamContext, records: Sequence[AuditRecord], *, msg_id: str | None = None) -> None:
    """Publish as the outbox relay does: on the record's subject, the event id as Nats-Msg-Id."""
    for item in records:
        await js.publish(
            item.subject(), encode_message(item), headers={"Nats-Msg-Id": msg_id or str(item.id)}
        )


async def ledger_rows(runtime: ServiceRuntime, tenant_id: str | None = None) -> list[Any]:
    where = "WHERE tenant_id = :t" if tenant_id else ""
    async with runtime.engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT tenant_id, seq, record_id, action FROM audit.ledger {where} ORDER BY 1, 2"),
            {"t": tenant_id},
        )
        return list(result)


async def ledger_count(runtime: ServiceRuntime) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM audit.ledger"))).scalar_one())


async def verify(runtime: ServiceRuntime, tenant_id: str) -> VerificationResult:
    keyring = checkpoint_keyring(runtime.settings)  # type: ignore[arg-type]
    async with runtime.driver_transaction(wake_relay=False) as conn:
        return await verify_tenant(conn, tenant_id, keyring)


async def driver_of(conn: AsyncConnection) -> DriverConnection:
    """The psycopg connection under a SQLAlchemy connection (the audit code runs on psycopg)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def as_superuser(conn: AsyncConnection, statement: str, **params: Any) -> None:
    """Run `statement` with triggers off, as a superuser bypassing the append-only guard would."""
    await conn.execute(text("SET LOCAL session_replication_role = replica"))
    await conn.execute(text(statement), params)


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


@asynccontextmanager
async def ledger_sessions(database_url: str) -> AsyncIterator[Any]:
    """Sessions on the test database, for driving the service layer without NATS."""
    from grantline.runtime.db.engine import create_engine, session_factory

    engine = create_engine(database_url, pool_size=2)
    try:
        yield engine, session_factory(engine)
    finally:
        await engine.dispose()


async def append_direct(sessions: Any, entries: Sequence[Any]) -> None:
    from grantline.audit.service.ingest import append_entries

    async with sessions() as session, session.begin():
        await append_entries(await driver_connection(session), entries)


def entry(tenant_id: str = "acme", *, received_at: datetime | None = None, **fields: Any) -> Any:
    from grantline.audit.service.ingest import entry_from_record

    return entry_from_record(record(tenant_id, **fields), received_at or now())
