"""Rate-limit counters shared by every gateway replica.

Revision ID: gateway_0004
Revises: gateway_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0004"
down_revision = "gateway_0003"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(300), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("rate_limits_window_start", "rate_limits", ["window_start"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("rate_limits", schema=SCHEMA)
