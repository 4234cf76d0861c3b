"""Webhook deliveries are remembered per provider app, not per provider.

Two apps can be sent byte-identical bodies (GitHub's authorization-revoked event names only the
user), so a delivery to one tenant's app must never count as a replay of another's. Rows from before
name no app ('') and keep matching nothing new; they age out with the retention.

Revision ID: gateway_0011
Revises: gateway_0010
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0011"
down_revision = "gateway_0010"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
TABLE = "webhook_deliveries"


def upgrade() -> None:
    op.add_column(
        TABLE,
        sa.Column("provider_app_id", sa.String(64), nullable=False, server_default=""),
        schema=SCHEMA,
    )
    op.drop_constraint("webhook_deliveries_pkey", TABLE, schema=SCHEMA, type_="primary")
    op.create_primary_key(
        "webhook_deliveries_pkey", TABLE, ["provider", "provider_app_id", "delivery_id"], schema=SCHEMA
    )
    op.drop_index("webhook_deliveries_body", TABLE, schema=SCHEMA)
    columns = ["provider", "provider_app_id", "body_sha256"]
    op.create_index("webhook_deliveries_body", TABLE, columns, unique=True, schema=SCHEMA)


def downgrade() -> None:
    # Per-provider keys again: rows that would collide across apps are dropped first.
    op.execute("DELETE FROM gateway.webhook_deliveries WHERE provider_app_id <> ''")
    op.drop_index("webhook_deliveries_body", TABLE, schema=SCHEMA)
    op.create_index("webhook_deliveries_body", TABLE, ["provider", "body_sha256"], unique=True, schema=SCHEMA)
    op.drop_constraint("webhook_deliveries_pkey", TABLE, schema=SCHEMA, type_="primary")
    op.create_primary_key("webhook_deliveries_pkey", TABLE, ["provider", "delivery_id"], schema=SCHEMA)
    op.drop_column(TABLE, "provider_app_id", schema=SCHEMA)
