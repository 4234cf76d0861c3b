"""A flow may expect the account the user grants as (a login hint or an email domain), and may
narrow the connection it re-authorizes.

Revision ID: gateway_0009
Revises: gateway_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0009"
# Re-chained at merge after the revisions of the other branches, if any.
down_revision = "gateway_0008"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "pending_authorizations", sa.Column("expected_account", sa.String(320), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "pending_authorizations", sa.Column("expected_domain", sa.String(253), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "pending_authorizations",
        sa.Column("replace_scopes", sa.Boolean, nullable=False, server_default="false"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("pending_authorizations", "replace_scopes", schema=SCHEMA)
    op.drop_column("pending_authorizations", "expected_domain", schema=SCHEMA)
    op.drop_column("pending_authorizations", "expected_account", schema=SCHEMA)
