"""Data keys, provider apps and connections (with their sealed secrets).

Revision ID: vault_0003
Revises: vault_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "vault_0003"
down_revision = "vault_0002"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("data_key_id", sa.String(64), nullable=False),
        sa.Column("master_key_id", sa.String(64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        *_timestamps(),
        schema=SCHEMA,
    )
    op.create_index("data_keys_master_key_id", "data_keys", ["master_key_id"], schema=SCHEMA)
    op.create_table(
        "provider_apps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(512), nullable=False),
        sa.Column("client_secret", sa.LargeBinary, nullable=True),
        sa.Column("webhook_secret", sa.LargeBinary, nullable=True),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("settings", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("allow_workspace_fallback", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("provider_definition", postgresql.JSONB, nullable=True),
        *_timestamps(),
        sa.UniqueConstraint("tenant_id", "provider", name="provider_apps_tenant_provider"),
        schema=SCHEMA,
    )
    op.create_index("provider_apps_provider", "provider_apps", ["provider"], schema=SCHEMA)
    op.create_table(
        "connections",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_app_id", sa.String(64), nullable=True),
        sa.Column("auth_kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.String(100), nullable=True),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("account", sa.String(300), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("token_type", sa.String(40), nullable=False, server_default="Bearer"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        # Fencing token: bumped by every change of token material or status, and by each lease.
        sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settings", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("provider_definition", postgresql.JSONB, nullable=True),
        # Sealed secrets (AES-256-GCM under the tenant's data key, bound to tenant, connection, field).
        sa.Column("access_token", sa.LargeBinary, nullable=True),
        sa.Column("refresh_token", sa.LargeBinary, nullable=True),
        sa.Column("id_token", sa.LargeBinary, nullable=True),
        sa.Column("api_key", sa.LargeBinary, nullable=True),
        schema=SCHEMA,
    )
    op.create_index("connections_lookup", "connections", ["tenant_id", "provider", "owner"], schema=SCHEMA)
    op.create_index("connections_provider_app", "connections", ["provider_app_id"], schema=SCHEMA)
    op.create_index(
        "connections_one_default",
        "connections",
        ["tenant_id", "owner", "provider"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("is_default"),
    )


def downgrade() -> None:
    op.drop_table("connections", schema=SCHEMA)
    op.drop_table("provider_apps", schema=SCHEMA)
    op.drop_table("data_keys", schema=SCHEMA)
