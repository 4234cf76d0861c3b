"""Tables of the refresher, all in the ``refresher`` schema."""

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, text
from sqlalchemy.dialects.postgresql import UUID

from grantline.runtime.inbox import processed_events_table
from grantline.runtime.outbox import outbox_table

SCHEMA = "refresher"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)

# One row per connection the refresher has heard of (migration refresher_0003 is the source of truth).
refresh_schedule = Table(
    "refresh_schedule",
    metadata,
    Column("connection_id", String(128), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("owner", String(300), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("end_reason", String(64)),
    Column("expires_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", String(300)),
    Column("last_refreshed_at", DateTime(timezone=True)),
    Column("lease_owner", String(128)),
    Column("lease_token", UUID(as_uuid=True)),
    Column("lease_until", DateTime(timezone=True)),
    Column("refresh_token_expires_at", DateTime(timezone=True)),
    Column("hard_expires_at", DateTime(timezone=True)),
    Column("warn_at", DateTime(timezone=True)),
    Column("warned_expiry_at", DateTime(timezone=True)),
    Column("last_event_at", DateTime(timezone=True), nullable=False),
    Column("last_event_id", UUID(as_uuid=True), nullable=False),
    Index("refresh_schedule_due", "next_attempt_at", postgresql_where=text("state = 'scheduled'")),
    Index("refresh_schedule_warn", "warn_at", postgresql_where=text("warn_at IS NOT NULL")),
)
