"""Finished runs: the vault refuses a run grant once its run has finished.

Revision ID: vault_0004
Revises: vault_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "vault_0004"
down_revision = "vault_0003"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.create_table(
        "finished_runs",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("finished_runs_finished_at", "finished_runs", ["finished_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("finished_runs", schema=SCHEMA)
