"""Flows bound to the browser that started them; connect links used once.

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
    # SHA-256 of the flow cookie of the browser that started the flow; NULL for API-started flows.
    op.add_column(
        "pending_authorizations", sa.Column("browser_binding", sa.String(64), nullable=True), schema=SCHEMA
    )
    # When the connect link was exchanged for a browser session (once only).
    op.add_column(
        "connect_sessions",
        sa.Column("link_used_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("connect_sessions", "link_used_at", schema=SCHEMA)
    op.drop_column("pending_authorizations", "browser_binding", schema=SCHEMA)
