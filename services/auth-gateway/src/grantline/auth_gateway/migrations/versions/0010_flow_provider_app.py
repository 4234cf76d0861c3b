"""A flow may be started with one of the tenant's named provider apps (its own OAuth client).

Revision ID: gateway_0010
Revises: gateway_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0010"
# Re-chained at merge after the revisions of the other branches, if any.
down_revision = "gateway_0009"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "pending_authorizations", sa.Column("provider_app", sa.String(40), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("pending_authorizations", "provider_app", schema=SCHEMA)
