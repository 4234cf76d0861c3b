"""The transactional outbox.

Revision ID: gateway_0001
Revises:
"""

from alembic import op

from grantline.runtime.outbox import outbox_columns

revision = "gateway_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table("outbox", *outbox_columns(), schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("outbox", schema=SCHEMA)
