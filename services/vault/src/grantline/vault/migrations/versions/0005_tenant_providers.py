"""Tenant-defined providers kept by the vault; filled from the copies it already held.

Until now the gateway kept these definitions and sent one along with each exchange and provider-app
write; the vault stored that copy on the provider app and on the connection. Those copies seed the
table (the newest per tenant and provider); the gateway hands over the rest at its start.

Revision ID: vault_0005
Revises: vault_0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "vault_0005"
down_revision = "vault_0004"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.create_table(
        "tenant_providers",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("definition", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.execute(
        """
        INSERT INTO vault.tenant_providers (tenant_id, provider, definition)
        SELECT DISTINCT ON (tenant_id, provider) tenant_id, provider, provider_definition
          FROM (SELECT tenant_id, provider, provider_definition, updated_at
                  FROM vault.provider_apps WHERE provider_definition IS NOT NULL
                UNION ALL
                SELECT tenant_id, provider, provider_definition, updated_at
                  FROM vault.connections WHERE provider_definition IS NOT NULL) AS copies
         WHERE provider_definition ->> 'id' = provider
         ORDER BY tenant_id, provider, updated_at DESC
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_table("tenant_providers", schema=SCHEMA)
