"""Each tenant's own providers and its provider switches, copied from the vault's announcements.

Revision ID: satisfaction_0004
Revises: satisfaction_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "satisfaction_0004"
down_revision = "satisfaction_0003"
branch_labels = None
depends_on = None

SCHEMA = "satisfaction"


def upgrade() -> None:
    op.create_table(
        "tenant_provider",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category_id", sa.String(64), nullable=False),
        sa.Column("apps", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("removed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "provider_id", name="tenant_provider_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "tenant_provider_switch",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "provider_id", name="tenant_provider_switch_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("tenant_provider_switch", schema=SCHEMA)
    op.drop_table("tenant_provider", schema=SCHEMA)
