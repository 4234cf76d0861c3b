"""Connections: a keyed digest of the provider account (looked up by an index when a webhook names
an account), and the start of a refresh attempt whose outcome is not settled yet.

Rows from before keep a null digest and are found by their `account` through a partial index until
they are re-authorized.

Revision ID: vault_0009
Revises: vault_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "vault_0009"
down_revision = "vault_0008"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.add_column("connections", sa.Column("account_digest", sa.LargeBinary, nullable=True), schema=SCHEMA)
    op.add_column(
        "connections",
        sa.Column("refresh_started_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "connections_account_digest",
        "connections",
        ["tenant_id", "provider", "account_digest"],
        schema=SCHEMA,
    )
    op.create_index(
        "connections_account_undigested",
        "connections",
        ["tenant_id", "provider", "account"],
        schema=SCHEMA,
        postgresql_where=sa.text("account_digest IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("connections_account_undigested", "connections", schema=SCHEMA)
    op.drop_index("connections_account_digest", "connections", schema=SCHEMA)
    op.drop_column("connections", "refresh_started_at", schema=SCHEMA)
    op.drop_column("connections", "account_digest", schema=SCHEMA)
