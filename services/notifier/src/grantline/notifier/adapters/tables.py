"""Tables of the notifier, all in the ``notifier`` schema."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="notifier")

endpoints = Table(
    "endpoints",
    metadata,
    Column("endpoint_id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    # Notification types the endpoint wants; empty: every type.
    Column("event_types", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The signing secret, sealed (AES-GCM, bound to the endpoint id and tenant): the notifier must
    # sign with it, so it cannot be a hash.
    Column("sealed_secret", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("endpoints_by_tenant", "tenant_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    # The webhook-id header: the same on every attempt, so a receiver de-duplicates on it.
    Column("delivery_id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column(
        "endpoint_id",
        String(64),
        ForeignKey(endpoints.c.endpoint_id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("connection_id", String(200), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True, server_default=func.now()),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    # An event redelivered by JetStream fans out once per endpoint.
    UniqueConstraint("endpoint_id", "event_id", name="deliveries_once_per_event"),
    Index("deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("deliveries_by_tenant", "tenant_id", "created_at"),
)
