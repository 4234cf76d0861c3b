"""Tenants, API keys, tenant providers, pending authorizations, connect sessions, webhook deliveries.

Revision ID: gateway_0003
Revises: gateway_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def _now() -> sa.sql.elements.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("return_to_allow_list", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=SCHEMA,
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(f"{SCHEMA}.tenants.tenant_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "tenant_providers",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(f"{SCHEMA}.tenants.tenant_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("definition", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=SCHEMA,
    )
    op.create_table(
        "pending_authorizations",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.String(64), nullable=False),
        sa.Column("scopes", postgresql.JSONB, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("return_to", sa.Text, nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=True),
        sa.Column("reauthorize", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("settings", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "pending_authorizations_expires_at", "pending_authorizations", ["expires_at"], schema=SCHEMA
    )
    op.create_table(
        "connect_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(f"{SCHEMA}.tenants.tenant_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("connect_sessions_expires_at", "connect_sessions", ["expires_at"], schema=SCHEMA)
    op.create_table(
        "webhook_deliveries",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("delivery_id", sa.String(300), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(100), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=SCHEMA,
    )
    op.create_index("webhook_deliveries_received_at", "webhook_deliveries", ["received_at"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "webhook_deliveries",
        "connect_sessions",
        "pending_authorizations",
        "tenant_providers",
        "api_keys",
        "tenants",
    ):
        op.drop_table(table, schema=SCHEMA)
