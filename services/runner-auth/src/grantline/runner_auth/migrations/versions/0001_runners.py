"""The runner registry.

Revision ID: runner_auth_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "runner_auth_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "runner_auth"


def upgrade() -> None:
    op.create_table(
        "runners",
        sa.Column("runner_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("tenants", ARRAY(sa.String(128))),
        sa.Column("platform_wide", sa.Boolean, nullable=False),
        sa.Column("secret_hash", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(200)),
        sa.Column("kick_checked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "(platform_wide AND tenants IS NULL) OR (NOT platform_wide AND cardinality(tenants) >= 1)",
            name="runners_scope",
        ),
        schema=SCHEMA,
    )
    # A tenant's runners (the admin API lists them), and the revocations the kick sweep still owes.
    op.create_index("runners_tenants", "runners", ["tenants"], schema=SCHEMA, postgresql_using="gin")
    op.create_index(
        "runners_revoked",
        "runners",
        ["revoked_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("runners", schema=SCHEMA)
