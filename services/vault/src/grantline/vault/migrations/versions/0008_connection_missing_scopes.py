"""Scopes a connection is known to lack: a server answered `insufficient_scope` (step-up).

Filled by `vault.report.<tenant>` with `kind: insufficient_scope`; a re-authorization that grants
them empties it again.

Revision ID: vault_0008
Revises: vault_0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "vault_0008"
# The lead re-chains this at merge (vault_0007 belongs to another branch).
down_revision = "vault_0007"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.add_column(
        "connections",
        sa.Column("missing_scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("connections", "missing_scopes", schema=SCHEMA)
