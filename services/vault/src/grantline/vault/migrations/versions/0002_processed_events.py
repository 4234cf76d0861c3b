"""Processed events: makes this service's consumers idempotent.

Revision ID: vault_0002
Revises: vault_0001
"""

from alembic import op

from grantline.runtime.inbox import processed_events_columns

revision = "vault_0002"
down_revision = "vault_0001"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.create_table("processed_events", *processed_events_columns(), schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("processed_events", schema=SCHEMA)
