"""Rate-limit counters shared by every gateway replica; webhook deliveries remember their body's hash.

Revision ID: gateway_0005
Revises: gateway_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0005"
down_revision = "gateway_0004"
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
    op.add_column("webhook_deliveries", sa.Column("body_sha256", sa.String(64), nullable=True), schema=SCHEMA)
    columns = ["provider", "body_sha256"]
    op.create_index("webhook_deliveries_body", "webhook_deliveries", columns, unique=True, schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("webhook_deliveries_body", "webhook_deliveries", schema=SCHEMA)
    op.drop_column("webhook_deliveries", "body_sha256", schema=SCHEMA)
    op.drop_table("rate_limits", schema=SCHEMA)
