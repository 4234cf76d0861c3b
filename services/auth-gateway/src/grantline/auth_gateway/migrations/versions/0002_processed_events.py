"""Processed events: makes this service's consumers idempotent.

Revision ID: gateway_0002
Revises: gateway_0001
"""

from alembic import op

from grantline.runtime.inbox import processed_events_columns

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table("processed_events", *processed_events_columns(), schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("processed_events", schema=SCHEMA)
