"""Wiring of the audit service: the ledger ingest loop, ``audit.query``, and retention."""

from grantline.audit.adapters.audit_stream import ConsumerOptions
from grantline.audit.adapters.keys import checkpoint_keyring, cursor_key
from grantline.audit.entrypoints.query_handler import serve_audit_query
from grantline.audit.entrypoints.retention_task import retention_loop
from grantline.audit.entrypoints.stream_consumer import LedgerIngest
from grantline.audit.settings import AuditSettings
from grantline.runtime.nats.consumers import AUDIT_LEDGER
from grantline.runtime.outbox_relay import OutboxTable
from grantline.runtime.service_runtime import ServiceRuntime

# audit.outbox (adapters/tables.py declares it, for the migrations; the service runs on psycopg).
OUTBOX = OutboxTable("audit")


def create_runtime(settings: AuditSettings | None = None) -> ServiceRuntime:
    """Build the audit service runtime."""
    settings = settings or AuditSettings()
    # Resolved first, so a production deployment without keys fails at start-up, not at the first cut.
    keyring = checkpoint_keyring(settings)
    runtime = ServiceRuntime(settings, outbox=OUTBOX)
    runtime.bind_consumer(AUDIT_LEDGER)
    ingest = LedgerIngest(runtime, batch_size=settings.audit_ingest_batch, options=ConsumerOptions())
    runtime.add_background_task(ingest.run)
    serve_audit_query(runtime, cursor_key=cursor_key(settings))
    if settings.audit_retention_interval_seconds > 0:
        runtime.add_background_task(
            retention_loop(
                runtime,
                keyring=keyring,
                default_days=settings.audit_retention_days,
                batch=settings.audit_retention_batch,
                interval_seconds=settings.audit_retention_interval_seconds,
            )
        )
    return runtime
