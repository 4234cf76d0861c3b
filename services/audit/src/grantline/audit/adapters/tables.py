"""Tables of the audit service, all in the ``audit`` schema."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from grantline.runtime.inbox import processed_events_table
from grantline.runtime.outbox import outbox_table

SCHEMA = "audit"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)

# The append-only ledger: one hash chain per tenant, ordered by seq. A trigger refuses UPDATE, and
# refuses DELETE of any row that no checkpoint covers (migration audit_0003).
ledger = Table(
    "ledger",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("record_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # "C" collation: an action family ("connection.*") is then a plain byte range an index can serve.
    Column("action", String(100, collation="C"), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("connection_id", Text),
    Column("provider", Text),
    Column("app_id", Text),
    Column("run_id", Text),
    Column("tool", Text),
    Column("user_id", Text),
    Column("outcome", String(20), nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The newest link of each tenant's chain: appends lock this row, so two replicas never fork a chain,
# and verification compares the chain's end with it, so deleting the newest record is detected.
chain_heads = Table(
    "chain_heads",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Signed checkpoints written by retention: where the remaining chain starts after a cut.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("removed_count", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(100), nullable=False),
    Column("signature", String(128), nullable=False),
)

# Per-tenant retention overrides; tenants without a row use GRANTLINE_AUDIT_RETENTION_DAYS.
tenant_retention = Table(
    "tenant_retention",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("retention_days", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
