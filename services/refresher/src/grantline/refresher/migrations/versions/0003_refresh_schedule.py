"""The refresh schedule: when each connection must next be refreshed, and who holds it.

Revision ID: refresher_0003
Revises: refresher_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "refresher_0003"
down_revision = "refresher_0002"
branch_labels = None
depends_on = None

SCHEMA = "refresher"


def upgrade() -> None:
    op.create_table(
        "refresh_schedule",
        sa.Column("connection_id", sa.String(128), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        # scheduled | unscheduled (nothing to refresh) | ended (revoked, reauth required: a tombstone)
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("last_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_token", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hard_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_expiry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", postgresql.UUID(as_uuid=True), nullable=False),
        schema=SCHEMA,
    )
    # Claiming reads the head of this index only: its size is the number of scheduled rows, and a
    # claim touches O(batch) entries whatever the table size. A claimed row's next_attempt_at moves
    # to its lease expiry, so in-flight rows leave the due range and return to it if a worker dies.
    op.create_index(
        "refresh_schedule_due",
        "refresh_schedule",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'scheduled'"),
    )
    op.create_index(
        "refresh_schedule_warn",
        "refresh_schedule",
        ["warn_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("warn_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("refresh_schedule", schema=SCHEMA)
