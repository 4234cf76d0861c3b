"""Pending provider revocations (RFC 7009): an outbox of calls still to make, retried with backoff.

Each row keeps the token exactly as it was sealed in its connection (same key, same associated
data: tenant, connection, owner, provider, field) until the provider confirms or the vault gives up.

Revision ID: vault_0006
Revises: vault_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "vault_0006"
down_revision = "vault_0005"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.create_table(
        "pending_revocations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("connection_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_app_id", sa.String(64), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("sealed_token", sa.LargeBinary, nullable=False),
        sa.Column("token_type_hint", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("pending_revocations_due", "pending_revocations", ["next_attempt_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("pending_revocations", schema=SCHEMA)
