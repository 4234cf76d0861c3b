"""A connect session may name which of the tenant's provider apps its new connections use.

Revision ID: gateway_0012
Revises: gateway_0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "gateway_0012"
down_revision = "gateway_0011"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column("connect_sessions", sa.Column("provider_apps", JSONB, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("connect_sessions", "provider_apps", schema=SCHEMA)
