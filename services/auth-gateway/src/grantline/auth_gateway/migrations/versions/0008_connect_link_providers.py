"""Connect sessions scoped to some providers (the links of held runs).

Revision ID: gateway_0008
Revises: gateway_0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "gateway_0008"
# Re-chained at merge after the revisions of the other branches (0006, 0007).
down_revision = "gateway_0005"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    # The provider ids the session may list and connect; NULL: every provider of the tenant.
    op.add_column("connect_sessions", sa.Column("providers", JSONB, nullable=True), schema=SCHEMA)
    # The held run a link was minted for, if any (what the admin sees about a session's origin).
    op.add_column("connect_sessions", sa.Column("run_id", sa.String(200), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("connect_sessions", "run_id", schema=SCHEMA)
    op.drop_column("connect_sessions", "providers", schema=SCHEMA)
