"""A provider app may force the shared (workspace) connection for every user of the tenant.

"All apps in the workspace use the shared authorization": with `force_workspace_connection`, a resolve
answers the workspace connection even for a user who has connected their own.

Revision ID: vault_0011
Revises: vault_0010
"""

import sqlalchemy as sa
from alembic import op

revision = "vault_0011"
down_revision = "vault_0010"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.add_column(
        "provider_apps",
        sa.Column("force_workspace_connection", sa.Boolean, nullable=False, server_default="false"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("provider_apps", "force_workspace_connection", schema=SCHEMA)
