"""Settings of the audit service (environment variables with the ``GRANTLINE_`` prefix)."""

from pydantic import Field, SecretStr

from grantline.runtime.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    http_port: int = 8084
    # The ingest (one connection at a time) and audit.query (up to 4 requests at once) share the psycopg
    # autocommit pool (runtime.single_statement): room for all of them, so a burst of queries never
    # holds up a batch. Retention takes its own connection from the transaction pool.
    database_driver_pool_size: int = Field(default=6, ge=1, le=100)

    # Records older than this are cut (behind a signed checkpoint) unless a tenant has its own value.
    audit_retention_days: int = Field(default=365, ge=1)
    # How often the retention task looks for prefixes to cut; 0 disables the task (cut with the CLI).
    audit_retention_interval_seconds: float = Field(default=3600.0, ge=0)
    # At most this many records are cut per transaction, so a first cut of a large backlog stays small.
    audit_retention_batch: int = Field(default=20_000, ge=1)

    # Checkpoint signing keys: JSON {"<key id>": "<base64 of >= 32 bytes>", ...}; new checkpoints are
    # signed with the active key id, old ones keep verifying while their key stays in the ring.
    audit_checkpoint_keys: SecretStr | None = None
    audit_checkpoint_active_key: str | None = None
    # MAC key of query cursors (base64, >= 32 bytes).
    audit_cursor_key: SecretStr | None = None

    # Ingest: messages fetched per batch (one transaction per batch). The consumer's ack wait is part
    # of its declaration, which `grantline migrate` applies (GRANTLINE_AUDIT_INGEST_ACK_WAIT_SECONDS).
    audit_ingest_batch: int = Field(default=500, ge=1, le=5000)
